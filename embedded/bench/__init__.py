"""The pipeline's performance benchmark (`scripts/bench`): each measure against its physical limit, side by
side in one run. See README.md ("Performance")."""
