"""The course kit: exercises cut from the repository's own code (course/make.py), graded by
checks that name the mistake (course/grade.py), and labs graded by what a training run does.
docs/course.md is the teacher's page."""
