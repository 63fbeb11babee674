"""Pictures of motion: a sequence as a GIF or PNG (:mod:`.skeleton`) and the skeleton drawn over
a video's frames (:mod:`.video`). Plots of results live with the results
(:mod:`ssal.evaluation.plots`)."""
