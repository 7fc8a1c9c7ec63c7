"""Rich renderables shared by the headless commands and the app: images, bars, matrices."""
