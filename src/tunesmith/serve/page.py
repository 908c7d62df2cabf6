"""GET /: one self-contained page to try the model by hand. No script, style or font comes from elsewhere.

It posts to /predict and shows the answer: the label with a bar per probability, the labels of a
multi-label model, a value, the text with its entities highlighted, or a generative model's answer.
Every piece of text from the user or the model is set with textContent, never as HTML.
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tunesmith</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.4 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
textarea{width:100%;height:6rem;font:inherit}input{font:inherit}
.bar{background:#4a7;height:.8rem;display:inline-block;vertical-align:middle}
.row{margin:.2rem 0}.generated{white-space:pre-wrap}.name{display:inline-block;min-width:8rem}
mark{background:#fd6;padding:0 .1rem}mark small{color:#555;margin-left:.2rem}
#error{color:#b00}#key{width:16rem}
</style></head><body>
<h1>tunesmith</h1><p id="about">Loading model information...</p>
<textarea id="text" placeholder="Type a text to predict for"></textarea>
<p><label id="keyline" hidden>API key <input id="key" type="password" autocomplete="off"></label>
<button id="go">Predict</button></p>
<div id="result"></div><p id="error"></p>
<script>
const $ = (id) => document.getElementById(id);
function headers(){const h={"Content-Type":"application/json"};if($("key").value)h["X-API-Key"]=$("key").value;return h}
function el(tag, text){const e=document.createElement(tag);if(text!==undefined)e.textContent=text;return e}
async function about(){
  const r = await fetch("health"); const h = await r.json(); $("keyline").hidden = !h.api_key_required;
  $("about").textContent = "Model task: " + h.task + ". Texts up to " + h.max_chars + " characters.";
}
function show(text, result){
  const out = $("result"); out.replaceChildren();
  if (result.entities){
    const p = el("p"); let at = 0;
    for (const e of result.entities){
      p.append(text.slice(at, e.start)); const m = el("mark", text.slice(e.start, e.end));
      m.append(el("small", e.type + " " + e.score.toFixed(2))); p.append(m); at = e.end;
    }
    p.append(text.slice(at)); if (!result.entities.length) p.append(el("em", " (no entities)")); out.append(p); return;
  }
  if ("generated_text" in result){
    const p = el("p", result.generated_text); p.className = "generated"; out.append(p); return;
  }
  if ("value" in result){ out.append(el("p", "Value: " + result.value.toFixed(4))); return; }
  if (result.label) out.append(el("p", "Label: " + result.label + " (" + result.score.toFixed(3) + ")"));
  if (result.labels) out.append(el("p", "Labels: " + (result.labels.join(", ") || "(none)")));
  for (const [name, p] of Object.entries(result.probabilities || {})){
    const row = el("div"); row.className = "row"; const n = el("span", name); n.className = "name";
    const bar = el("span"); bar.className = "bar"; bar.style.width = (p * 20) + "rem";
    row.append(n, bar, el("span", " " + p.toFixed(3))); out.append(row);
  }
}
async function predict(){
  $("error").textContent = ""; const text = $("text").value;
  try{
    const r = await fetch("predict", {method:"POST", headers:headers(), body:JSON.stringify({text:text})});
    const body = await r.json();
    if (!r.ok){ $("error").textContent = body.error || ("HTTP " + r.status); return; }
    show(text, body.predictions[0]);
  } catch (e){ $("error").textContent = String(e); }
}
$("go").addEventListener("click", predict);
about();
</script></body></html>
"""
