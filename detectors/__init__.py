"""Online anomaly detectors (river style): volume, negativity, emerging topic, and the per-brand composite."""

from detectors.brand import Assessment, BrandDetector
from detectors.settings import DetectionSettings

__all__ = ["Assessment", "BrandDetector", "DetectionSettings"]
