"""The pi-distill stage: PI, π-Distill (arXiv 2602.04942). One set of weights plays a teacher that sees privileged
information (the reference solution) and a student that does not; rollouts come from the teacher, and the
objective mixes the teacher's KL-penalised reward term with the student's importance-weighted term by α.
"""
