"""mscc-cds: a CDS Hooks service that screens for metastatic spinal cord compression."""

__all__ = ["__version__"]

__version__ = "0.1.0"
