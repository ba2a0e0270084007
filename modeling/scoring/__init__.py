"""Scoring a trained model on a split: metrics, the detection breakdown, the report and its figures."""
