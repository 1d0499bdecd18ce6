"""The app's drawing pad and its "How it adds" view: Gradio's public gr.HTML component around a plain 2D
<canvas> (web/pad.js) and the page's own reader (web/page.js).

    pad = drawing_pad(examples, head)         # inside a gr.Blocks; elem_id "sketch"
    pad.read(...), pad.send(...), pad.example(...)   # its events, fired in the browser with gr.HTML's trigger

Everything the pad does (drawing, erasing, undo, redo, clear, loading an example) happens in the browser. Its
value is None or the canvas as a PNG data URL, set by the page only when it asks the server to read (the
"send" event); nothing the server sends ever touches the canvas.
"""

from pathlib import Path

import gradio as gr

WEB_DIR = Path(__file__).parent / "web"
PAD_CSS = (WEB_DIR / "pad.css").read_text(encoding="utf-8")
TOOLS = (  # (data-tool, accessible name, key hint, SVG path of its 24x24 icon)
    ("draw", "Draw", "", "M4 20l4-1L19 8l-3-3L5 16zM14 6l3 3"),
    ("erase", "Erase", "", "M8 20h12M5 15l8-8 5 5-8 8H9zM9 11l5 5"),
    ("undo", "Undo", "Ctrl+Z", "M9 14L4 9l5-5M4 9h10a6 6 0 010 12h-3"),
    ("redo", "Redo", "Shift+Ctrl+Z", "M15 14l5-5-5-5M20 9H10a6 6 0 000 12h3"),
    ("clear", "Clear", "", "M5 7h14M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3"),
)


def icon(path: str) -> str:
    """An inline 24x24 stroke icon (it takes the button's text colour)."""
    return (f'<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" fill="none" stroke="currentColor" '
            f'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="{path}"/></svg>')


def toolbar() -> str:
    """The pad's buttons: real <button>s named Draw, Erase, Undo, Redo and Clear (#clear)."""
    buttons = []
    for tool, name, keys, path in TOOLS:
        extra = ' aria-pressed="false"' if tool in ("draw", "erase") else ""
        extra += ' id="clear"' if tool == "clear" else ""
        title = f"{name} ({keys})" if keys else name
        buttons.append(f'<button type="button" class="pad-tool" data-tool="{tool}" aria-label="{name}" '
                       f'title="{title}"{extra}>{icon(path)}<span>{name}</span></button>')
    return "".join(buttons)


# Static: nothing in it depends on the value, so gr.HTML never re-renders it and the canvas keeps its pixels.
# Handlebars fills in the examples (props.examples) once.
TEMPLATE = f"""<div class="mnist-sum-pad">
<div class="pad-toolbar" role="toolbar" aria-label="Drawing tools">{toolbar()}</div>
<div class="pad-square">
<canvas class="pad-canvas" role="img" aria-label="Drawing pad: draw a digit 0-9 here"></canvas>
</div>
<div id="examples" class="pad-examples" role="group" aria-label="Examples: click one to draw it">
{{{{#each examples}}}}<button type="button" class="pad-example" data-example="{{{{@index}}}}"
 aria-label="Example: a {{{{digit}}}}, number {{{{number}}}}" title="{{{{digit}}}} + {{{{number}}}}">
<img src="{{{{url}}}}" alt="" width="48" height="48" loading="lazy"><span>+{{{{number}}}}</span></button>{{{{/each}}}}
</div>
</div>"""

# The page (web/page.js, loaded by `head`) drives the pad; each event it fires is a Python event of the pad.
JS_ON_LOAD = """
window.mnistSumPage.mountPad(element, props, {
  read: () => trigger("read"),        // the page has a reading: its listener shows it (JavaScript only)
  send: () => trigger("send"),        // the server is to read the pad's value (/predict)
  example: () => trigger("example"),  // an example was drawn: its listener sets the slider
});
"""

VIEW_TEMPLATE = """<details class="how-it-adds" open>
<summary>How it adds</summary>
<div class="how-it-adds-view"></div>
</details>"""
VIEW_JS_ON_LOAD = "window.mnistSumPage.mountView(element);"


# Plain gr.HTML instances, not subclasses: Gradio writes a .pyi stub beside the module of every Component
# subclass when the class is defined (docs/gradio-notes.md, 5), which a read-only Space cannot take.
def drawing_pad(examples: list[dict], head: str, **kwargs) -> gr.HTML:
    """The drawing pad: a 2D canvas with Draw, Erase, Undo, Redo and Clear, and a strip of examples under it.

    examples: [{"url", "digit", "number"}, ...] (the thumbnails); head: web_page.head's string. Its value, which
    /predict reads, is None or the canvas as a PNG data URL."""
    return gr.HTML(value=None, label="Drawing pad (its image as a PNG data URL)", html_template=TEMPLATE,
                   css_template=PAD_CSS, js_on_load=JS_ON_LOAD, head=head, examples=examples,
                   apply_default_css=False, **kwargs)


def how_it_adds(head: str, **kwargs) -> gr.HTML:
    """'How it adds': the network's maps, its what-if sums and its sum table, drawn by web/explain_view.js.

    head: the same web_page.head string as the pad's (its scripts load once)."""
    return gr.HTML(value=None, html_template=VIEW_TEMPLATE, js_on_load=VIEW_JS_ON_LOAD, head=head,
                   apply_default_css=False, **kwargs)
