"""Feature catalogues (feature pages) for any model and transcoder: top activating contexts with
quantile bins, density, logit effects and labels, streamed over a corpus in bounded memory."""

from circuitmap.catalogue.builder import (
    CATALOGUE_DIR,
    CatalogueResult,
    CatalogueSettings,
    InputSource,
    ModelInputs,
    Progress,
    build_catalogue_dir,
    feature_catalogue,
    logit_effects,
)
from circuitmap.catalogue.cards import (
    AUTOMATIC,
    CATALOGUE_FILE,
    CATALOGUE_LINES_FILE,
    Context,
    FeatureCard,
    QuantileBin,
    auto_label,
    catalogue_file,
    label_features,
    load_catalogue,
    save_catalogue,
)

__all__ = [
    "AUTOMATIC",
    "CATALOGUE_DIR",
    "CATALOGUE_FILE",
    "CATALOGUE_LINES_FILE",
    "CatalogueResult",
    "CatalogueSettings",
    "Context",
    "FeatureCard",
    "InputSource",
    "ModelInputs",
    "Progress",
    "QuantileBin",
    "auto_label",
    "build_catalogue_dir",
    "catalogue_file",
    "feature_catalogue",
    "label_features",
    "load_catalogue",
    "logit_effects",
    "save_catalogue",
]
