"""Root conftest: the plugin itself comes from the installed ``pytest11`` entry point."""

import os

# Reports from the project's own runs land under reports/ unless the caller says otherwise.
os.environ.setdefault("MI_ASSERT_REPORTS", os.path.join(os.path.dirname(__file__), "reports"))
