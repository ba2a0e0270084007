"""The CIFAKE model: a transformers-native CNN (config, model, image processor), trained with Trainer.

Importing this package registers the classes with the Auto classes, so saved models load without
`trust_remote_code` wherever the kit is installed; elsewhere the code saved beside the weights
(`auto_map`) is used.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification

from modeling.configuration_cifake import CifakeConfig
from modeling.image_processing_cifake import CifakeImageProcessor
from modeling.modeling_cifake import CifakeForImageClassification, CifakeModel, CifakePreTrainedModel

AutoConfig.register(CifakeConfig.model_type, CifakeConfig, exist_ok=True)
AutoModel.register(CifakeConfig, CifakeModel, exist_ok=True)
AutoModelForImageClassification.register(CifakeConfig, CifakeForImageClassification, exist_ok=True)
# One PIL-based processor for both backends: torchvision's resize would not match the PIL bicubic
# filter the dataset builder downscales with.
AutoImageProcessor.register(
    CifakeConfig, image_processor_classes={"pil": CifakeImageProcessor, "torchvision": CifakeImageProcessor}, exist_ok=True
)

# On save_pretrained, copy the code files next to the weights and write `auto_map`.
CifakeConfig.register_for_auto_class()
CifakeModel.register_for_auto_class("AutoModel")
CifakeForImageClassification.register_for_auto_class("AutoModelForImageClassification")
CifakeImageProcessor.register_for_auto_class("AutoImageProcessor")

__all__ = [
    "CifakeConfig",
    "CifakeForImageClassification",
    "CifakeImageProcessor",
    "CifakeModel",
    "CifakePreTrainedModel",
]
