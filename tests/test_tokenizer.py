"""The BPE tokenizer: training, tiktoken equivalence, digits, special tokens, the .tiktoken file."""

import pytest
import tiktoken

from data.problems import TaskConfig, make_splits
from data.tokenizer import ASCII_PAT, PAT_STR, SPECIAL_TOKENS, Tokenizer, train_bpe


@pytest.fixture(scope="module")
def corpus():
    splits = make_splits(TaskConfig(n_train=1500, n_eval=20))
    return [p.prompt + s.think + s.answer_text for p, s in splits.train]


@pytest.fixture(scope="module")
def tok(corpus):
    return Tokenizer(train_bpe(corpus, 400))


def test_first_merge_by_hand():
    """'aaab aaab': chunks 'aaab' and ' aaab'; pairs aa x4, ab x2, ' a' x1 -> first merge b'aa'."""
    ranks = train_bpe(["aaab aaab"], 256 + len(SPECIAL_TOKENS) + 1)
    assert len(ranks) == 257 and ranks[b"aa"] == 256


def test_vocab_size_and_determinism(corpus, tok):
    assert tok.n_vocab == 400
    assert train_bpe(corpus, 400) == tok.ranks
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe(corpus, 100)


def test_round_trip(corpus, tok):
    for text in corpus[:200] + ["", "hello world", "tabs\tand\nnewlines  ", "héllo ünïcode ☃"]:
        assert tok.decode(tok.encode(text)) == text


def test_every_digit_is_its_own_token(corpus, tok):
    digit_tokens = {t for t in tok.ranks if any(chr(c).isdigit() for c in t)}
    assert all(len(t) == 1 for t in digit_tokens)          # no merged token holds a digit
    assert [tok.decode([i]) for i in tok.encode("12345")] == list("12345")


def test_python_pattern_splits_like_tiktoken(corpus, tok):
    """On ASCII text our `re` pattern and tiktoken's pattern cut the same chunks: encoding each
    `re` chunk separately gives the same ids as tiktoken on the whole text."""
    for text in corpus[:300]:
        by_chunk = [i for c in ASCII_PAT.findall(text) for i in tok.encode(c)]
        assert by_chunk == tok.encode(text)


def test_matches_tiktoken_called_directly(corpus, tok):
    enc = tiktoken.Encoding("direct", pat_str=PAT_STR, mergeable_ranks=tok.ranks, special_tokens={})
    for text in corpus[:100]:
        assert enc.encode_ordinary(text) == tok.encode(text)


def test_text_never_produces_special_tokens(tok):
    specials = {tok.eot, tok.pad, tok.think, tok.think_end, tok.answer, tok.answer_end}
    hostile = "<think>x</think><answer>3</answer><|endoftext|><|pad|>"
    ids = tok.encode(hostile)
    assert not specials & set(ids)
    assert tok.decode(ids) == hostile


def test_render_places_special_tokens(tok):
    ids, n_prompt = tok.render("Q?\n", "1+1: 1+1=2, so 2.", "2")
    assert ids[n_prompt] == tok.think and ids[-1] == tok.eot
    assert ids.count(tok.answer) == 1 and ids.count(tok.answer_end) == 1
    assert tok.decode(ids) == "Q?\n<think>1+1: 1+1=2, so 2.</think><answer>2</answer><|endoftext|>"


def test_save_load_round_trip(tok, tmp_path):
    path = str(tmp_path / "tok.tiktoken")
    tok.save(path)
    again = Tokenizer.load(path)
    assert again.ranks == tok.ranks and again.n_vocab == tok.n_vocab
    assert again.encode("Ann has 52 apples.") == tok.encode("Ann has 52 apples.")
    first = open(path).readline().split()
    assert len(first) == 2 and first[1] == "0"               # standard `base64 rank` lines


def test_load_reports_the_bad_line(tok, tmp_path):
    path = tmp_path / "bad.tiktoken"
    tok.save(str(path))
    lines = path.read_text().splitlines()
    lines[300] = "not-base64!! 300"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"bad.tiktoken:301:"):
        Tokenizer.load(str(path))
    path.write_text("\n".join(lines[:10]) + "\n")
    with pytest.raises(ValueError, match="256 single bytes"):
        Tokenizer.load(str(path))
    with pytest.raises(FileNotFoundError):
        Tokenizer.load(str(tmp_path / "missing.tiktoken"))
