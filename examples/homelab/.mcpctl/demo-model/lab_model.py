"""The homelab's demo model: a LiteLLM `CustomLLM` that answers without any provider or network,
and uses the time server's tool the way a real model would. DEMO ONLY.

* "what time is it in <city>?" with a `*get_current_time` tool offered: calls it with the city's
  IANA zone (`{"timezone": "Asia/Tokyo"}`); given the tool's result, answers with the time it read.
* anything else: a greeting that says what it can do.

Served by `litellm --config litellm.yaml` from this directory (see ../../README.md).
"""

import json
import re

from litellm import CustomLLM
from litellm.types.utils import ModelResponse

ZONES = {
    "tokyo": "Asia/Tokyo", "london": "Europe/London", "berlin": "Europe/Berlin", "paris": "Europe/Paris",
    "new york": "America/New_York", "san francisco": "America/Los_Angeles", "sydney": "Australia/Sydney",
    "utc": "UTC",
}
ASK = re.compile(r"what time is it in ([a-z ]+?)\s*\??$", re.I)


def _text(content):
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def _time_tool(params):
    if params.get("tool_choice") == "none":
        return None
    names = [t.get("function", {}).get("name", "") for t in params.get("tools") or []]
    return next((n for n in names if n.endswith("get_current_time")), None)


def answer(messages, params):
    """(text, tool calls) for this request."""
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        try:
            seen = json.loads(_text(last.get("content")))
            when = seen["datetime"][11:16]
            return f"It is {when} in {seen['timezone']} ({seen.get('day_of_week', '')}), per the time server.", []
        except (ValueError, KeyError, TypeError):
            return "The time server answered: " + _text(last.get("content")), []
    asked = ASK.search(_text(last.get("content")).strip())
    tool = _time_tool(params)
    if asked and tool:
        city = asked.group(1).strip().lower()
        zone = ZONES.get(city)
        if zone is None:
            return f"I know the time zones of {', '.join(sorted(ZONES))}; not of {city}.", []
        return "", [{"id": "call_time_1", "type": "function", "function": {"name": tool, "arguments": json.dumps({"timezone": zone})}}]
    return "Hello from the lab model. Ask me: what time is it in Tokyo?", []


def _usage(messages, text):
    prompt = 1 + sum(len(_text(m.get("content"))) for m in messages) // 4
    completion = 1 + len(text.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class LabModel(CustomLLM):
    async def acompletion(self, model, messages, *args, optional_params=None, **kwargs):
        text, calls = answer(messages, optional_params or {})
        message = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        reason = "tool_calls" if calls else "stop"
        return ModelResponse(choices=[{"index": 0, "message": message, "finish_reason": reason}], usage=_usage(messages, text), model=model)

    async def astreaming(self, model, messages, *args, optional_params=None, **kwargs):
        text, calls = answer(messages, optional_params or {})
        for word in re.findall(r"\S+\s*", text):
            yield {"text": word, "tool_use": None, "is_finished": False, "finish_reason": "", "usage": None, "index": 0}
        for i, call in enumerate(calls):
            yield {"text": "", "tool_use": {**call, "index": i}, "is_finished": False, "finish_reason": "", "usage": None, "index": 0}
        reason = "tool_calls" if calls else "stop"
        yield {"text": "", "tool_use": None, "is_finished": True, "finish_reason": reason, "usage": _usage(messages, text), "index": 0}


handler = LabModel()
