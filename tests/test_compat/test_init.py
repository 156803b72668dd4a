"""mmdist.compat.apply: every fix wired in once."""
import mmdist  # noqa: F401  applies the fixes
from mmdist import compat


def test_apply_is_idempotent():
    before = compat.apply()
    assert before['fuser_aliases'] == []
    assert before['backend_config_utils'] is False
    assert before['lazy_backend_configs'] is False
    assert before['default_hooks_none'] is False
    assert before['memoized_config_formatting'] is False
    assert before['inplace_guard'] is False
    assert before['scoped_collate_fn'] is False
    assert before['albu_seeded'] is False
    assert before['mmyolo_version_check'] is False
