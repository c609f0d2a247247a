"""Export evolution trajectories as SFT and RL training data."""
