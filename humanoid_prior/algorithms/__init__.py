"""The learning algorithms: PPO with a KL-adaptive rate, and left-right mirror augmentation."""
