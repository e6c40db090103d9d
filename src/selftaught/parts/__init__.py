"""The built-in parts a recipe names, by role: each type's settings dataclass and where it is
implemented. Importing this package registers them (``selftaught.registry``); nothing here
imports torch, so that a recipe is checked before any model code loads.

Each settings class may say what it needs of the rest of the recipe (``check``) and declare, as
class variables, what the loop and the other parts may rely on (a selector's ``makes``, a
learner's ``consumes``, a judge's ``equivalents``, ...): the combinations are checked from these,
never from type names.
"""

from selftaught.parts.curricula import CurriculumSettings
from selftaught.parts.judges import JudgeSettings
from selftaught.parts.learners import LearnerSettings
from selftaught.parts.models import ModelSettings
from selftaught.parts.samplers import SamplerSettings
from selftaught.parts.selectors import SelectorSettings
from selftaught.parts.tasks import TaskSettings

__all__ = ["CurriculumSettings", "JudgeSettings", "LearnerSettings", "ModelSettings", "SamplerSettings",
           "SelectorSettings", "TaskSettings"]
