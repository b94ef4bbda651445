"""Training runs: the teacher, the student, its teacher data, warm starts, and the whole pipeline."""
