"""The grid partition: buildings in, grids (网格) of 300–500 households out.

The package's files are the steps of the pipeline, in order:

=================  =====================================================================
``atoms``          where each building belongs, unit splits, seed points, groups
``blocks``         barriers ranked (water, arterial, local road, wall); areas cut into blocks
``tessellation``   every square metre of a block given to one unit; which units touch
``hierarchy``      communities and streets: given ones repaired, or derived
``pieces``         one community cut into grids, barriers as preferences
``regions``        the balanced, connected, compact partition of one piece (bisection)
``moves``          atom moves between regions: repair of the range, refinement of shape
``recombination``  moves and ReCom-style recombination across the grids of a community
``graph``          components, spanning trees and edge lists the solvers share
``communities``    every community planned, in worker processes
``codes``          15-digit grid codes in reading order
``crossings``      the barriers each grid crosses, with the reason
``engine``         :func:`plan_grids`: the steps put together
``geometry``       the 1 cm precision model every overlay uses
=================  =====================================================================
"""

from __future__ import annotations

from .crossings import crossings
from .engine import INSTITUTION_USES, MAJOR_HIGHWAYS, RURAL_USES, plan_grids

__all__ = ["INSTITUTION_USES", "MAJOR_HIGHWAYS", "RURAL_USES", "crossings", "plan_grids"]
