"""Processing an uploaded image: thumbnails in several sizes, progress per size."""
