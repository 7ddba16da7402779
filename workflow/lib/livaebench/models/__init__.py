"""Neural models of the benchmark: count likelihoods, Lorentz geometry, LiVAE and its VAE-family relatives."""
from .likelihoods import LIKELIHOODS, CountLikelihood, get_likelihood
from .livae import LiVAE, LiVAEConfig, count_tensors

__all__ = ["LIKELIHOODS", "CountLikelihood", "get_likelihood", "LiVAE", "LiVAEConfig", "count_tensors"]
