import pytest

# The reusable contract suites live in the package; let pytest explain their failures.
pytest.register_assert_rewrite("metrichub_core.testing")
