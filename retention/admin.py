"""Admin of the retention app: the nightly scores and the retention work."""

import retention.admin_scores
import retention.admin_work  # noqa: F401
