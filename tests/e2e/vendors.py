"""Fake vendor servers for the browser tests: each answers with a recorded stream in its own
wire format (OpenAI SSE, Anthropic named events, Gemini SSE, Ollama NDJSON), delivered in
small pieces with pauses, and remembers what it was sent."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

STREAMS = Path(__file__).resolve().parents[1] / "fixtures" / "streams"

# path suffix -> (recorded stream, content type)
ROUTES = {
    "/v1/chat/completions": ("openai/answer.sse", "text/event-stream"),
    "/v1/messages": ("anthropic/answer.sse", "text/event-stream"),
    ":streamGenerateContent": ("gemini/answer.sse", "text/event-stream"),
    "/api/chat": ("ollama_native/answer.sse", "application/x-ndjson"),
}


class Vendors:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        vendors = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                path = self.path.split("?")[0]
                vendors.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                route = next((v for k, v in ROUTES.items() if path.endswith(k)), None)
                if route is None:
                    self.send_error(404)
                    return
                data = (STREAMS / route[0]).read_bytes()
                self.send_response(200)
                self.send_header("content-type", route[1])
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for start in range(0, len(data), 97):
                    piece = data[start : start + 97]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                    time.sleep(0.02)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """Base URL overrides and keys that point five providers at this server."""
        return {
            "PLAYGROUND_OPENAI_BASE_URL": f"{self.url}/v1",
            "PLAYGROUND_ANTHROPIC_BASE_URL": self.url,
            "PLAYGROUND_GEMINI_BASE_URL": f"{self.url}/v1beta",
            "PLAYGROUND_OLLAMA_NATIVE_BASE_URL": self.url,
            # Qwen's compatible mode speaks OpenAI's format (test_video_audio).
            "PLAYGROUND_QWEN_BASE_URL": f"{self.url}/compatible-mode/v1",
            "DASHSCOPE_API_KEY": "sk-e2e-dashscope-key-000000000",
            "OPENAI_API_KEY": "sk-e2e-openai-key-000000000000",
            "ANTHROPIC_API_KEY": "sk-ant-e2e-key-0000000000000",
            "GEMINI_API_KEY": "AIza-e2e-gemini-key-000000000000000",
            # People's own endpoints may point at this loopback server (test_own_endpoint).
            "PLAYGROUND_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
