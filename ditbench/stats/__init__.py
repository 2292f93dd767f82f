"""The statistical half of the latent-DiT paper (DESIGN §3.3, E7/E8): a Gaussian mixture on a
linear latent space with its exact score under the OU process (:mod:`.mixture`), the latent and
ambient score networks (:mod:`.networks`), denoising score matching (:mod:`.train`), metrics
(:mod:`.metrics`), reverse-SDE sampling (:mod:`.sampling`), one measured point
(:mod:`.experiment`) and the fitted rates (:mod:`.rates`, torch-free). User guide: docs/stats.md.

Nothing is imported here, so ``ditbench.stats.rates`` stays importable without torch.
"""
from __future__ import annotations
