"""Run launchers: start each run with its partition range (local process or Kubernetes Job)."""
