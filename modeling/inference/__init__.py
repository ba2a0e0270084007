"""Using a trained model: loading it, predicting on image files, Grad-CAM explanations, ONNX export."""
