"""Who is calling the control plane, and what they may do."""
