"""``fer-bench``: run methods on datasets and regenerate the papers' tables and figures."""
