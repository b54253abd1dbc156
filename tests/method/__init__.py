"""The method: workspace, QP, losses, models, the authors' options and the mechanism."""
