"""Red-line encroachment (issue 19): human-activity patches inside ecological conservation red lines
(STANDARDS §5), their classification, the patch ledger (台账) and its follow-up across runs."""

from ecoassess.redline.accuracy import patch_accuracy
from ecoassess.redline.detect import DetectionResult, detect_patches
from ecoassess.redline.ledger import Ledger, read_ledger, update_ledger, write_ledger

__all__ = ["detect_patches", "DetectionResult", "update_ledger", "read_ledger", "write_ledger", "Ledger",
           "patch_accuracy"]
