"""Export (TorchScript, ONNX, manifest) and the robot runtime (``humanoid_prior.deploy``).

Export and the runtime arrive with the deploy issue.
"""
