import pytest

from modeling import CifakeConfig, CifakeForImageClassification


def test_defaults_are_the_papers_best_topology():
    config = CifakeConfig()
    assert config.model_type == "cifake_cnn"
    assert (config.conv_filters, config.kernel_size, config.dense_units) == ([32, 32], 3, [64])
    assert config.id2label == {0: "FAKE", 1: "REAL"} and config.label2id == {"FAKE": 0, "REAL": 1}
    assert config.feature_map_size() == 6  # 32 -conv-> 30 -pool-> 15 -conv-> 13 -pool-> 6


def test_round_trip_keeps_every_field(tmp_path):
    config = CifakeConfig(conv_filters=[16, 32, 64], conv_padding="same", convs_per_block=2, use_batch_norm=True,
                          dense_units=[128, 32], dropout=0.25, hidden_act="gelu")
    config.save_pretrained(tmp_path)
    loaded = CifakeConfig.from_pretrained(tmp_path)
    assert loaded.architecture() == config.architecture()
    assert loaded.id2label == {0: "FAKE", 1: "REAL"}
    assert loaded.to_dict() == config.to_dict()


def test_timm_fields_round_trip(tmp_path):
    config = CifakeConfig(backbone="vit_tiny_patch16_224", backbone_kwargs={"img_size": 32, "patch_size": 4}, dense_units=[])
    config.save_pretrained(tmp_path)
    loaded = CifakeConfig.from_pretrained(tmp_path)
    assert loaded.backbone_kwargs == {"img_size": 32, "patch_size": 4} and loaded.dense_units == []


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"conv_filters": [32, 0]}, r"conv_filters=\[32, 0\]: every layer needs at least 1 unit"),
        ({"dense_units": [0]}, r"dense_units=\[0\]: every layer needs at least 1 unit"),
        ({"conv_filters": []}, "conv_filters is empty"),
        ({"conv_filters": [8] * 5}, "shrink a 32x32 input to nothing"),
        ({"conv_padding": "full"}, "conv_padding='full' is not one of valid, same"),
        ({"kernel_size": 0}, "kernel_size=0 must be at least 1"),
        ({"dropout": 1.0}, r"dropout=1.0 must be in \[0, 1\)"),
    ],
)
def test_bad_configs_say_what_is_wrong(fields, message):
    with pytest.raises(ValueError, match=message):
        CifakeConfig(**fields)


def test_five_same_padded_layers_fit():
    assert CifakeConfig(conv_filters=[8] * 5, conv_padding="same").feature_map_size() == 1


def test_unknown_backbone_names_the_fix():
    with pytest.raises(ValueError, match=r"backbone='resnet-9000' is not a timm model.*list_models"):
        CifakeForImageClassification(CifakeConfig(backbone="resnet-9000"))


def test_cifar_stem_needs_a_resnet_style_model():
    with pytest.raises(ValueError, match="backbone_cifar_stem needs a ResNet-style timm model"):
        CifakeForImageClassification(CifakeConfig(backbone="vit_tiny_patch16_224", backbone_cifar_stem=True,
                                                  backbone_kwargs={"img_size": 32, "patch_size": 4}))
