"""The three Hub-travelling model files cannot import the kit: they must agree with its schema."""

from cifake_kit.schema import IMAGE_SIZE, LABEL_NAMES


def test_the_model_files_spell_the_labels_and_size_as_the_schema_does():
    from modeling import CifakeConfig, CifakeImageProcessor
    from modeling.configuration_cifake import CIFAKE_ID2LABEL

    assert [CIFAKE_ID2LABEL[i] for i in range(len(LABEL_NAMES))] == LABEL_NAMES
    assert CifakeConfig().id2label == dict(enumerate(LABEL_NAMES)) and CifakeConfig().image_size == IMAGE_SIZE
    processor = CifakeImageProcessor()
    assert (processor.crop_size.height, processor.crop_size.width, processor.size.shortest_edge) == (IMAGE_SIZE,) * 3


def test_the_metric_module_names_the_labels_as_the_schema_does():
    from modeling.scoring.report import cifake_metric

    source = cifake_metric().__class__.__module__
    import sys

    assert sys.modules[source].DEFAULT_LABEL_NAMES == LABEL_NAMES
