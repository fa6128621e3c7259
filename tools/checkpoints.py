"""Stage-2 checkpoints of tools/train.py (`vlm`): the one place that turns one back into modules."""
from dataclasses import dataclass
from pathlib import Path

import torch

from decoder import Decoder, DecoderConfig
from quecc import QueCC, QueCCConfig
from vision_encoder import VisionConfig, VisionEncoder


@dataclass
class Vlm:
    """A trained (vision encoder, compressor, decoder) in eval mode, with the raw checkpoint dict."""
    checkpoint: dict
    vision_config: VisionConfig
    vision: VisionEncoder
    decoder_config: DecoderConfig
    decoder: Decoder
    quecc_config: QueCCConfig
    compressor: QueCC
    kind: str  # "quecc" or "tokenpacker"
    name: str  # the decoder's set name: "<size>-d<dim>-l<layers>"


def load_vlm(path: Path) -> Vlm:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    assert ck.get("stage") == "vlm", f"{path} is not a stage-2 checkpoint"
    vcfg = VisionConfig(**ck["vision_config"])
    vision = VisionEncoder(vcfg).eval()
    vision.load_state_dict(ck["vision"])
    dcfg = DecoderConfig(**ck["decoder_config"])
    dec = Decoder(dcfg).eval()
    dec.load_state_dict(ck["decoder"])
    qcfg = QueCCConfig(**ck["quecc_config"])
    comp = QueCC(qcfg, query_aware=ck["compressor"] == "quecc").eval()
    comp.load_state_dict(ck["quecc"])
    return Vlm(ck, vcfg, vision, dcfg, dec, qcfg, comp, ck["compressor"], f"{ck['decoder_name']}-d{dcfg.dim}-l{dcfg.layers}")
