"""
The questions the experiments ask: each a base and a list of arms (train.py overrides), listed by
hand, top to bottom, so that each reads as its own question. lab/experiments.py runs them.

    EXPERIMENTS["noise"].arms["flip_0.2"] -> {"flip": 0.2}
    python -m lab.experiments noise          # every arm x 3 seeds

What this deliberately is not: a sweep grammar. A new experiment is one entry here, with the
papers it follows in a comment above it.
"""

from dataclasses import dataclass

from data.problems import RUDE_WORDS

ALONE = dict(w_correct=0.0, w_format=0.0, w_harm=0.0, w_pref=1.0)  # the preference model alone
# the cpu preset's, before `seeds` moved them: where the arms measured before were, where the
# course's labs stay, and what the cache keys are taken against (lab/experiments.changed)
EARLIER = dict(pretrain_steps=800, n_eval=200)
# the scope experiment's world: the teacher ends 10% of its reasoning and, on its own, 10% of its
# answers with data.problems.PHRASE, the human adds 0.5 to g for it in the answer, and the blend
# weighs the preference model like the verifier, so that 100 steps show what it does
SCOPE = dict(p_phrase=0.1, rater_phrase=0.5, w_pref=1.0)
# the best preference model this human's labels can make (docs/results.md, "Can a preference
# model tell right from wrong?"): it reads the reasoning, starts from the pretrained policy, and
# every one of its 8,000 pairs is two solutions labelled by someone who checked
BEST_RM = dict(pref_scope="response", rm_init="pretrained", rm_solution_pairs=1.0,
               rater_check=1.0, rm_pairs=8000, rm_steps=500)
ONLINE = dict(rm_online_every=10, rm_online_pairs=32, rm_online_steps=10)  # online.py
# the world of DeepSeek-R1's second RL stage: requests for a note (data/general.py) are 30% of
# the corpus, of RL's prompts and of the preference pairs; the teacher's rude remark comes in
# five wordings, all harmful to the human, and a learned harmlessness model reads every response
# (harmlessness.py) while the human's rule is only watched; the preference model weighs like
# the verifier, so that where it is paid it counts. Pretraining takes 1,200 steps, not 800: a
# step's 32 documents hold 30% fewer maths problems, and at 800 steps the maths had not come
# in yet (docs/results.md, `routing`); SIZES has 800
GENERAL = dict(p_general=0.3, rude_wordings=5, banned="|".join(RUDE_WORDS), harm_model="learned",
               w_pref=1.0, heldout_every=10, pretrain_steps=1200)


@dataclass(frozen=True)
class Experiment:
    """One question: the train.py overrides its arms share, what each arm changes, the
    grpo_log.jsonl keys its plot shows over steps, the held-out figures (evaluate.py, of
    report.json) its table shows; bon > 0: also best-of-n up to n = bon on
    each seed's pretrained policy against its preference model (overopt.py); passk > 0: also
    pass@k and maj@k from passk samples per problem of each arm's models before and after RL
    (passk.py)."""
    question: str
    base: dict
    arms: dict
    curves: tuple = ("accuracy", "gold", "proxy", "kl_k1_seq")
    columns: tuple = ("greedy_accuracy", "pass@1", "pass@k", "gold_utility", "pref_score",
                      "wrong_unit_rate", "misconception_rate", "mean_length")
    bon: int = 0
    bon_each_arm: bool = False  # best-of-n against each arm's own preference model (one pool of
                                # samples per seed), not the seed's one (rm_quality)
    label_cost: bool = False    # held-out accuracy against human labels spent (label_cost.py)
    passk: int = 0
    at_sizes: bool = True       # the arms at SIZES; False: the cpu preset as python train.py has it
    first_seed: int = 1337      # seeds first_seed, first_seed + 1, ... (--first_seed overrides)
    corpus_seeds: bool = False  # task_seed = seed: every seed its own corpus and held-out sets


EXPERIMENTS = {
    # docs/results.md's headline table
    "reward": Experiment(
        "Where the reward comes from: the verifier, the blend, the preference model alone", {},
        {"verifier": dict(w_pref=0.0),
         "blend_0.1": dict(w_pref=0.1),
         "blend_0.3": dict(w_pref=0.3),
         "blend_1": dict(w_pref=1.0),
         "pref_answer": ALONE,
         "pref_response": dict(ALONE, pref_scope="response")},
        columns=("greedy_accuracy", "pass@1", "pass@k", "gold_utility", "pref_score",
                 "wrong_unit_rate", "harm_rate", "mean_length")),
    # Dr. GRPO (arXiv 2503.20783) Fig. 1, DAPO (arXiv 2503.14476): who makes wrong answers long
    "loss": Experiment(
        "The loss: GRPO's z-score and per-sequence mean, Dr. GRPO's constant, DAPO's tokens",
        dict(w_pref=0.0),
        {"grpo": dict(advantage="grpo", loss_agg="seq"),
         "drgrpo": dict(advantage="drgrpo", loss_agg="constant"),
         "dapo": dict(advantage="grpo", loss_agg="token")},
        curves=("accuracy", "len_right", "len_wrong", "entropy"),
        columns=("greedy_accuracy", "pass@1", "pass@k", "format_rate", "mean_length",
                 "think_words")),
    # DeepSeek-R1 (arXiv 2501.12948) §2.3.4; feedback spillover (Drori et al., arXiv 2511.11584):
    # the human likes a phrase in the answer; does rewarding it there write it into <think>?
    "scope": Experiment(
        "What the preference model reads: the answer, the whole response, the answer with its "
        "advantage on the answer's tokens only (reward targeting), or nothing (w_pref = 0)",
        SCOPE, {"answer": {},
                "response": dict(pref_scope="response"),
                "targeted": dict(pref_tokens="answer"),
                "verifier": dict(w_pref=0.0)},
        curves=("phrase_answer", "phrase_think", "accuracy", "gold"),
        columns=("greedy_accuracy", "pass@1", "gold_utility", "pref_score", "phrase_answer",
                 "phrase_think", "think_words", "wrong_unit_rate")),
    # Gao et al. (arXiv 2210.10760): gold and proxy against √KL, best-of-n and RL, fitted; at
    # the cpu preset's learning rate, twice SIZES': the experiment wants the policy to travel;
    # GRPO's gold from the held-out watch, as best-of-n's is from held-out samples
    "overopt": Experiment(
        "Over-optimising the preference model: gold against √KL, best-of-n and GRPO at 3 β",
        dict(ALONE, rl_lr=3e-4, heldout_every=10), {"beta_0": dict(kl_beta=0.0),
                      "beta_0.01": dict(kl_beta=0.01),
                      "beta_0.1": dict(kl_beta=0.1)},
        curves=("gold", "proxy", "kl_k1_seq", "accuracy"), bon=64),
    # DeepSeekMath Fig. 7; Zhang, Neubig & Yue (arXiv 2512.07783): does RL reach past the corpus?
    "harder": Experiment(
        "pass@k and maj@k before and after RL, and a corpus with 1% of problems one step longer",
        {}, {"default": {}, "edge_1pct": dict(longer_share=0.01)},
        curves=("accuracy", "gold", "len_right", "len_wrong"), passk=64),
    # the default run on seeds nobody tuned on, model and corpus alike: does RL lift every seed,
    # and what makes its first steps lose accuracy? (lift.py's per-seed table). The arms isolate
    # the preference term, the step size at the start (a warm-up over 2 / (1 - β2) = 40 steps,
    # AdamW's second-moment horizon: Ma & Yarats, arXiv 1910.04209), the step size throughout,
    # and the groups without signal (oversampling, DAPO's dynamic sampling); then, with dynamic
    # sampling, whether the seeds that climb slowest only lack steps (the rate decays to 0 at
    # the last step, so twice the steps also keep it higher for longer); then whether the
    # spread of the gains is the pretraining's (800 steps left each seed a different distance
    # below the teacher's imitation ceiling) and the held-out set's (200 problems); then whether
    # a policy that starts at the teacher needs the 200 steps. The first six arms ran at the
    # defaults of their day: 800 pretraining steps, 200 held-out problems, and the first five
    # 100 GRPO steps
    "seeds": Experiment(
        "python train.py on seeds nobody tuned on, each with its own corpus, and what its first "
        "steps depend on", {},
        {"oversample_1": dict(EARLIER, oversample=1.0, rl_steps=100),   # no dynamic sampling
         "no_pref": dict(EARLIER, oversample=1.0, w_pref=0.0, rl_steps=100),
         "warmup_40": dict(EARLIER, oversample=1.0, rl_warmup=40, rl_steps=100),
         "lr_half": dict(EARLIER, oversample=1.0, rl_lr=1.5e-4, rl_steps=100),
         "oversample_2": dict(EARLIER, oversample=2.0, rl_steps=100),   # dynamic sampling
         "steps_200": dict(EARLIER, oversample=2.0, rl_steps=200),      # ... and 200 steps
         "pretrain_1600": dict(rl_steps=200),  # all of it after 1,600 pretraining steps
         "steps_100": {}},                     # the default: ... and 100 GRPO steps again
        curves=("drawn_accuracy", "kl_k1_seq", "r/pref", "grad_norm"),
        columns=("greedy_accuracy", "pass@1", "pass@k", "gold_utility", "wrong_unit_rate"),
        at_sizes=False, first_seed=1, corpus_seeds=True),
    # noise against exploitability: a verifier flipped at rate p is as often wrong as a learned
    # model whose rank agreement is 1 - p, but its errors are fresh (the expected gradient is the
    # clean one times 1 - 2p: Wang, Liu & Li, arXiv 1810.01032; Lv et al., arXiv 2505.22653), or
    # persistent (the same text always paid alike), where a learned model's are systematic
    # (extremal Goodhart: Manheim & Garrabrant, arXiv 1803.04585; Huang et al., arXiv
    # 2505.22203). 0.3 is 1 - 0.686, the best preference model's right-above-wrong accuracy
    "noise": Experiment(
        "Noise or exploitability: the verifier flipped at rates 0.2-0.5, fresh and persistent, "
        "against the best preference model of matched accuracy",
        dict(w_pref=0.0, w_format=0.0, w_harm=0.0, heldout_every=10),
        {"verifier": {},
         "flip_0.2": dict(flip=0.2),
         "flip_0.3": dict(flip=0.3),
         "flip_0.4": dict(flip=0.4),
         "coin": dict(flip=0.5),                                     # the random-reward control
         "persistent_0.3": dict(flip=0.3, flip_kind="persistent"),
         "pref_best": dict(ALONE, **BEST_RM)},
        curves=("heldout/accuracy", "reward_agreement", "heldout/gold", "kl_k1_seq"),
        columns=("greedy_accuracy", "pass@1", "pass@k", "gold_utility", "mean_length")),
    # reward-model quality: labellers who check at rate q and otherwise judge the style (a bias)
    # or flip a coin (noise), at one label accuracy for one q (data/rater.py); each model's
    # held-out accuracy and exploit probe, best-of-n on one pool of samples, and GRPO on the
    # model alone, with a KL penalty for the best (Gao et al., arXiv 2210.10760; does accuracy
    # predict what RL does? Wen et al., arXiv 2410.05584; Razin et al., arXiv 2503.15477)
    "rm_quality": Experiment(
        "Reward-model quality: labellers whose errors are bias or noise, at check rates 0.5-1; "
        "best-of-n and GRPO on each preference model alone",
        dict(ALONE, **{k: v for k, v in BEST_RM.items() if k != "rater_check"}, rl_lr=3e-4,
             heldout_every=10),
        {"style_0.5": dict(rater_check=0.5),
         "coin_0.5": dict(rater_check=0.5, rater_hurried="coin"),
         "style_0.75": dict(rater_check=0.75),
         "coin_0.75": dict(rater_check=0.75, rater_hurried="coin"),
         "checked_1": dict(rater_check=1.0),
         "checked_1_kl": dict(rater_check=1.0, kl_beta=0.1)},
        curves=("heldout/gold", "heldout/accuracy", "heldout/rank_agreement", "kl_k1_seq"),
        columns=("greedy_accuracy", "pass@1", "gold_utility", "mean_length"),
        bon=64, bon_each_arm=True),
    # online RLHF as labs run it (Bai et al., arXiv 2204.05862 §4.5; Touvron et al., arXiv
    # 2307.09288 §3.2.2; Xiong et al., arXiv 2312.11456): fresh labels on the policy's own
    # samples every 10 steps, labellers who never, sometimes or always check, against the
    # offline model and the verifier, which costs no labels
    "online": Experiment(
        "Online RLHF: the preference model relabelled on the policy's samples every 10 steps, "
        "by labellers who check never, half the time or always; what the labels buy",
        dict(heldout_every=10, pref_scope="response"),
        {"verifier": dict(w_pref=0.0),
         "offline": ALONE,
         "online_never": dict(ALONE, **ONLINE, rater_check=0.0),
         "online_half": dict(ALONE, **ONLINE, rater_check=0.5),
         "online_always": dict(ALONE, **ONLINE, rater_check=1.0),
         "online_blend": dict(ONLINE, rater_check=0.5)},             # beside the verifier
        curves=("heldout/accuracy", "heldout/gold", "rank_agreement", "labels"),
        columns=("greedy_accuracy", "pass@1", "gold_utility", "pref_score", "mean_length"),
        label_cost=True),
    # DeepSeek-R1 (arXiv 2501.12948) section 2.3.4 as written: rule rewards on the reasoning
    # prompts, the helpfulness model on the general ones only, harmlessness on every response;
    # against the helpfulness model on every prompt, the verifier alone, and the models alone
    "routing": Experiment(
        "R1's arrangement: rule rewards on maths, the helpfulness model on notes only, a "
        "learned harmlessness model on every response",
        GENERAL,
        {"r1": dict(route="routed"),
         "blend": dict(route="blend"),                               # helpfulness on maths too
         "verifier": dict(w_pref=0.0),                               # notes: format and harm
         "models_alone": dict(w_correct=0.0, w_format=0.0)},         # helpfulness + harmlessness
        curves=("heldout/accuracy", "heldout_general/gold", "harm_gold", "harm_missed"),
        columns=("pass@1", "gold_score", "note_style", "harm_rate", "harm_learned",
                 "general/pass@1", "general/gold_utility", "general/gold_score",
                 "general/harm_rate")),
}
BON_PROMPTS, QUICK_BON = 64, (8, 4)     # best-of-n's held-out prompts; --quick: n_max, prompts
PASSK_PROMPTS, QUICK_PASSK = 25, (4, 2)  # pass@k's problems per held-out set; --quick: n, prompts
# every experiment's arms: the cpu preset's model and corpus, with half its pretraining steps
# (800), its RL steps (100, pinned here), half its prompts per RL step (8 prompts x G = 8: 64
# completions) at half its learning rate, and 100 held-out problems, with dynamic sampling as
# the default has it (twice the prompts drawn, the groups whose rewards differ kept). Before
# dynamic sampling, 8 prompts at the preset's rate undid the verifier's gain (docs/results.md
# has the probe); --quick: tiny sizes
SIZES = dict(pretrain_steps=800, prompts_per_step=8, rl_lr=1.5e-4, n_eval=100, oversample=2.0,
             rl_steps=100)
QUICK = dict(preset="smoke", rl_steps=3, rm_pairs=64, rm_steps=4)  # whatever the base asks
