"""Real voice notes for the tests: words spoken by espeak-ng, encoded by ffmpeg into the
formats people send (Ogg/Opus voice notes, MP3 audio, MP4 round videos), made into tmp_path."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.fake_llm import FakeLLM, RecordedRequest


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def _spoken_wav(words: str, directory: Path) -> Path:
    wav = directory / "spoken.wav"
    _run("espeak-ng", "-w", str(wav), words)
    return wav


def voice_note(words: str, directory: Path) -> bytes:
    """An Ogg/Opus voice note saying `words`, as Telegram and browsers record them."""
    ogg = directory / "voice.ogg"
    wav = _spoken_wav(words, directory)
    _run("ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-c:a", "libopus", str(ogg))
    return ogg.read_bytes()


def round_video(words: str, directory: Path) -> bytes:
    """A square MP4 video note (H.264 and AAC) saying `words`."""
    mp4 = directory / "note.mp4"
    wav = _spoken_wav(words, directory)
    _run(
        "ffmpeg", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "color=c=blue:s=240x240:d=10",
        "-i", str(wav), "-shortest", "-c:v", "libx264", "-c:a", "aac", str(mp4),
    )  # fmt: skip
    return mp4.read_bytes()


def transcriptions(fake: FakeLLM) -> list[RecordedRequest]:
    """The fake vendor's transcription requests: `file` is the multipart upload."""
    return [r for r in fake.requests if r.path == "/v1/audio/transcriptions"]


def speeches(fake: FakeLLM) -> list[RecordedRequest]:
    """The fake vendor's speech requests (JSON: `model`, `input`, `voice`)."""
    return [r for r in fake.requests if r.path == "/v1/audio/speech"]


def last_question(fake: FakeLLM) -> str:
    """The last user message of the last chat completion the fake vendor was asked for."""
    asked = [r for r in fake.requests if r.path.endswith("/chat/completions")][-1]
    question: str = asked.json["messages"][-1]["content"]
    return question
