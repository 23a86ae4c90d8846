"""What a person may attach to one turn besides images (playground.media); plain numbers,
read by the settings too (the request body's limit)."""

MB = 1024 * 1024
MAX_VIDEO_BYTES = 20 * MB  # Gemini takes a request of at most 20 MB inline
MAX_AUDIO_BYTES = 10 * MB
MAX_VIDEOS = 2
MAX_AUDIOS = 2
MAX_FRAMES = 16
MAX_FRAME_BYTES = 2 * MB
MAX_VIDEO_SECONDS = 5 * 60
MAX_AUDIO_SECONDS = 10 * 60
MAX_URL_CHARS = 2000
