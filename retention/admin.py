import retention.admin_scores  # noqa: F401
