"""Everything TuNAS-specific: its three spaces (`space`), its Pixel-1 linear cost model (`cost_model`)
and that model normalised into table fields (`published`), reached by the rest of latbench through the
space's own methods (`arch_keys(arch, "tunas-layer")`, `published_table()`)."""
from .keys import TUNAS_GRANULARITY, term_key  # noqa: F401
from .space import (DATA_FILE, TUNAS_SPACES, LayerSetting, MobileNetV3LikeSpace,  # noqa: F401
                    ProxylessNASEnlargedSpace, ProxylessNASSpace, TunasSpace, feature_index, load_tunas_data,
                    scale_filters, se_channels, tunas_space)
