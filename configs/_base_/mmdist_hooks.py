# mmdist's hooks, which every distillation config adds to its
# default_hooks (default_hooks = _base_.mmdist_default_hooks):
# - teacher_eval: after the student's first validation, the teacher is
#   evaluated once on the same data and its metrics are logged beside the
#   student's, as teacher/<metric>;
# - random_state: checkpoints keep the random states, so that a run resumed
#   with --resume draws what the uninterrupted run would have.
# Turn either off with default_hooks.<name>=None.
mmdist_default_hooks = dict(
    teacher_eval=dict(type='mmdist.TeacherEvalHook'),
    random_state=dict(type='mmdist.RandomStateHook'))
