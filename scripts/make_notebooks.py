"""Write notebooks/*.ipynb from the cell lists below (saved without outputs: no video bytes in the repo).

``notebook(name, speed=...)`` builds one of them with every studio, client and embedded simulator at another
simulator speed: the browser tests run the notebooks as written, only faster.
"""

import re
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent.parent / "notebooks"

QUICKSTART = [
    new_markdown_cell("# grok_nb quick start\n\nYour first video in three cells. With no `XAI_API_KEY` set, grok_nb "
                      "runs its **embedded simulator**: real MP4s, simulated timing, nothing billed."),
    new_code_cell("import grok_nb\n\nstudio = grok_nb.Studio()"),
    new_code_cell('fox = studio.generate("A red fox trotting through fresh snow at dawn", duration=4)'),
    new_code_cell("run = fox.result()  # blocks until done; the card above already shows the player\n"
                  "print(run.summary())\nprint(run.path)"),
    new_markdown_cell("## Image → video\nThe image becomes the first frame. grok_nb bundles one to try."),
    new_code_cell("from grok_nb.demo import sample_image\n\n"
                  'lighthouse = studio.generate("The beam sweeps over the sea as waves roll in", '
                  "image=sample_image(), duration=4)"),
    new_markdown_cell("## Edit and extend, chained\nBoth take an earlier run (or its request id, or its URL). "
                      "A handle can also be awaited: top-level `await` works in a notebook."),
    new_code_cell('night = studio.edit(fox.result(), "Make it night, with falling stars")\n'
                  'seagull = studio.extend(await lighthouse, "A seagull glides past the lighthouse", duration=3)'),
    new_code_cell("for handle in (night, seagull):\n    print(handle.result().summary())\n"
                  "studio.history()"),
]

COMPARE = [
    new_markdown_cell("# Compare prompts and parameters\n\nEvery list is an axis; the grid is their product. "
                      "The price is known before anything is sent, and a budget guards it."),
    new_code_cell("import grok_nb\n\nstudio = grok_nb.Studio(budget_usd=5.00)"),
    new_code_cell('prompts = [\n    "A red fox trotting through fresh snow at dawn",\n'
                  '    "A paper boat drifting down a rain-soaked street, neon reflections",\n'
                  '    "Clouds rolling over a mountain ridge at sunset",\n]\n'
                  'axes = dict(prompt=prompts, resolution=["480p", "720p"], duration=[2, 4])\n'
                  'estimate = sum(studio.estimate_cost(p, resolution=r, duration=d).usd\n'
                  '               for p in prompts for r in axes["resolution"] for d in axes["duration"])\n'
                  'print(f"12 jobs, estimated ${estimate:.2f} (prices as of {grok_nb.PRICES_AS_OF})")'),
    new_markdown_cell("A grid over budget sends nothing:"),
    new_code_cell("try:\n    studio.compare(**axes, budget_usd=1.00)\nexcept grok_nb.BudgetExceeded as exc:\n"
                  "    print(exc)"),
    new_markdown_cell("Within budget, confirmed: the twelve jobs as one live grid, prompts down the side, resolution "
                      "and duration across the top, all sharing one rate limiter. **Play all** plays them in step, "
                      "**A/B** compares two, ☆ rates one; the line above the grid counts what is done and says "
                      "what the budget has left."),
    new_code_cell('with studio.experiment("fox-boat-clouds"):\n    grid = studio.compare(**axes, confirm=True)'),
    new_markdown_cell("`grid.wait()` blocks until every cell is done and returns one row per cell, a pandas "
                      "DataFrame shown with dollars and seconds (an estimate is marked *est.*)."),
    new_code_cell("grid.wait()"),
    new_code_cell('studio.plot_latency(experiment="fox-boat-clouds")'),
    new_code_cell('studio.plot_cost(experiment="fox-boat-clouds")'),
    new_code_cell('report = grid.to_html("fox_boat_clouds_report.html")\nprint("report:", report, '
                  'f"({report.stat().st_size / 1e6:.1f} MB, videos inline)")'),
    new_code_cell('studio.history(experiment="fox-boat-clouds", status="done")'),
    new_markdown_cell("Pick the columns you want; they are shown as you picked them, formatted:"),
    new_code_cell('studio.history(experiment="fox-boat-clouds")[["prompt", "resolution", "latency_s", '
                  '"cost_actual_usd", '
                  '"request_id"]]'),
    new_markdown_cell("## Reading measures and takes\n\n"
                      "Every video is **measured** once it is downloaded: how much it moves (`motion`), how light it "
                      "is (`brightness`), its contrast, colour, sharpness, cuts, loudness... They are history columns "
                      "(`m_motion`, `m_brightness`, ...). The service has no seed, so the same request gives a "
                      "slightly different video each time: `takes=3` makes each cell three times, to see how much "
                      "it varies. The simulator's pictures follow the words: *night* is darker, *storm* and "
                      "*running* move more, *still* and *calm* less, *then cut to* makes a hard cut."),
    new_code_cell('moods = [\n    "A still lake at night under a calm moon",\n'
                  '    "Wild horses running through a storm",\n'
                  '    "A sunny meadow at noon, then cut to a city street",\n]\n'
                  'with studio.experiment("moods"):\n'
                  '    takes = studio.compare(prompt=moods, takes=3, duration=2, confirm=True)'),
    new_markdown_cell("One tile per cell; **1 2 3** under it picks the take that plays (Play all and A/B use the "
                      "chosen ones, a rating goes to that take's run). Under each tile, its measures, each tinted "
                      "from the grid's lowest (violet) to its highest (yellow); **Measures ▾** picks which. "
                      "The table gives each cell's mean over its takes, ± their standard deviation: the lake is "
                      "the darkest and calmest, the horses move more, the cut shows in `m_cuts`."),
    new_code_cell('table = takes.wait()\ntable.sort_values("m_motion")'),
    new_markdown_cell("Every take as a point, the mean ± one standard deviation per prompt: three takes of one "
                      "prompt sit close together, three prompts far apart (`y=\"brightness\"` shows the night "
                      "darkest; `x` may be any parameter, `\"resolution\"` or `\"duration\"` too)."),
    new_code_cell('studio.plot_measures("moods", x="prompt", y="motion")'),
    new_markdown_cell("The history sorts and filters by any measure, in SQL (`\"motion\"` is the column `m_motion`; "
                      "a range's ends are included, `None` leaves one open):"),
    new_code_cell('studio.history(experiment="moods", sort="motion", where={"motion": (0.005, None)})'
                  '[["prompt", "take", "m_motion", "m_brightness", "m_cuts"]]'),
    new_markdown_cell("Browse, play side by side, rate and note each run (new runs appear on their own); its sort "
                      "and its *measure* filter take the measures too:"),
    new_code_cell("studio.browse()"),
]

HOW = [
    new_markdown_cell("# How the video API works\n\nEvery call is asynchronous: **submit** (POST) returns a "
                      "`request_id`; you **poll** `GET /v1/videos/{id}` until `done`; then **download** the MP4 "
                      "from a URL that expires. Each card below keeps its HTTP exchanges (open *HTTP exchanges*)."),
    new_code_cell("import time\nimport grok_nb\n\nstudio = grok_nb.Studio()"),
    new_markdown_cell("## 1. Submit: a request id comes back at once"),
    new_code_cell('job = studio.generate("A hot-air balloon rising over a misty valley", duration=3)\n'
                  "while job.request_id is None:\n    time.sleep(0.05)\nprint(\"request_id:\", job.request_id)"),
    new_markdown_cell("## 2. Poll: watch the answers arrive"),
    new_code_cell("seen = 0\nwhile not job.done():\n    for e in job.run.exchanges[seen:]:\n"
                  "        print(e[\"method\"], e[\"path\"], e[\"status\"], e[\"summary\"])\n"
                  "    seen = len(job.run.exchanges)\n    time.sleep(0.2)\n"
                  "for e in job.run.exchanges[seen:]:\n"
                  "    print(e[\"method\"], e[\"path\"], e[\"status\"], e[\"summary\"])"),
    new_markdown_cell("## 3. The result, and what it cost\nThe estimate comes from the price table before sending; "
                      "the actual cost from `usage.cost_in_usd_ticks` in the answer (1 USD = 10¹⁰ ticks)."),
    new_code_cell("run = job.result()\nprint(\"estimated:\", run.estimate)\n"
                  "print(\"actual:   \", f\"${run.cost_actual_usd:.2f}\")\n"
                  "print(\"latency:  \", f\"{run.latency_s:.1f} s\", "
                  "\"over\", run.polls, \"polls\")\nstudio.exchanges(run)"),
    new_markdown_cell("## 4. Failure modes\n**Bad input** is refused before any request is sent, naming the field, "
                      "the value and what is allowed:"),
    new_code_cell("try:\n    studio.generate(\"too long\", duration=20)\nexcept grok_nb.ValidationError as exc:\n"
                  "    print(exc)"),
    new_markdown_cell("**A failed job** (the simulator fails any prompt carrying `[sim:fail=<code>]`): the card "
                      "turns red with the error code and the request id."),
    new_code_cell('failed = studio.generate("A storm at sea [sim:fail=service_unavailable]", duration=2)\n'
                  "print(failed.result().error)"),
    new_markdown_cell("**An expired URL**: result URLs are ephemeral (minutes to hours; 1 hour for batches). "
                      "Here the simulator's URLs are made to expire at once, so the download is refused; the job "
                      "and its request id stay in the history. grok_nb downloads at once for exactly this reason."),
    new_code_cell("from grok_nb.simulator import embedded\n\nserver, _ = embedded()\n"
                  "server.config.url_lifetime_s = 0\n"
                  'late = studio.generate("A lantern drifting in the dark", duration=1).result()\n'
                  "server.config.url_lifetime_s = 24 * 3600\nprint(late.status, \"→\", late.error)"),
    new_markdown_cell("The history keeps every job, the failed and expired ones too, newest first: their request "
                      "ids, error codes, and what each cost (a failed job without a reported cost counts nothing)."),
    new_code_cell('studio.history()[["kind", "status", "error_code", "cost_estimated_usd", "cost_actual_usd", '
                  '"latency_s", "poll_count", "request_id"]]'),
    new_markdown_cell("## 5. Many jobs, one rate limit\nxAI allows about **one request per second per key, polls "
                      "included**. The simulator runs 30× faster than the real service, so for this experiment "
                      "we make its limit stricter (6 requests per real second), so that it bites here as the real "
                      "one does.\n\nA grid sends every submit and poll of all its jobs through **one scheduler**. "
                      "In the timeline, the top row is that client's request slots (one request per slot, never "
                      "two at once); each job's row shows its submit ▶, its polls |, the poll that saw it done ★ "
                      "and the download bar."),
    new_code_cell("server.config.rate_limit = 0.2  # requests per simulated second: 6 per real second at 30×\n"
                  "limit = server.config.rate_limit * server.config.speed\n"
                  "shared = grok_nb.Studio(rate_limit=limit, quiet=True)  # one client, one scheduler for every job\n"
                  'prompts = ["A kite over dunes", "A comet over a lake", "A tram in the rain", "A heron taking off",\n'
                  '           "A lighthouse in fog", "A fox in snow"]\n'
                  "grid = shared.compare(prompt=prompts, duration=2, confirm=True, display=False)\n"
                  "grid.wait()\ngrid.timeline()"),
    new_markdown_cell("Now **a loop per job**, the way first scripts are often written: each job gets its own "
                      "client, which keeps to the limit on its own. Together they ask six times too often: the "
                      "server answers **429 Too Many Requests** (red ×), each refusal is a wasted request and a "
                      "pause; a loop refused too often gives up."),
    new_code_cell("loners = [grok_nb.Client(rate_limit=limit, quiet=True) for _ in prompts]  # a client per job\n"
                  "handles = [c.generate(p, duration=2, wait=False) for c, p in zip(loners, prompts)]\n"
                  "for h in handles:\n    try:\n        h.result()\n"
                  "    except grok_nb.GrokError as exc:  # a loop refused too often gives up\n"
                  '        print("gave up:", exc)\n'
                  "for c in loners:\n    c.close()\n"
                  "server.config.rate_limit = 1.0  # back to the real service's limit\n"
                  "studio.plot_timeline(handles, rate_limit=limit)"),
    new_markdown_cell("## 6. A class on one key\nxAI counts the limit **per key**, not per notebook. grok_nb does "
                      "too: every notebook on this machine that uses the same key draws from one budget (a small "
                      "file under `GROK_NB_HOME`, named by a hash of the key), so two notebooks never trip the "
                      "limit together; a card that waits for the others says so. `studio.status()` lists who shares "
                      "it. This notebook runs on its **own embedded simulator**, whose key no other process has, so "
                      "below it shows this process alone and says why.\n\n"
                      "**A teacher** runs one simulator for the class: `grok-nb simulator --host 0.0.0.0 "
                      "--port 8000 --api-key class-2026`. **Each student** sets `GROK_NB_BASE_URL=http://TEACHER:8000` "
                      "and `XAI_API_KEY=class-2026` (grok_nb asks that simulator how fast it runs). With one real "
                      "key instead, `GROK_NB_SHARED_URL=redis://…` shares its budget across machines and "
                      "`GROK_NB_HISTORY_URL=postgresql://…` gives the class one history to browse and rate. "
                      "`notebooks/CLASSROOM.md` has the details."),
    new_code_cell("studio.status()  # the processes and jobs drawing from this key's request budget"),
]

BATCHES = [
    new_markdown_cell("# Batches and uploads\n\n**A batch** sends many jobs at once, **outside the key's rate limit**. "
                      "It is the right tool for a large sweep that should not hold up the key (your notebook, or a "
                      "class on the same key, keeps its one request a second), and for an overnight run. It is the "
                      "wrong tool when you are iterating: a batch is **best effort**, results come back *typically "
                      "within 24 hours*, and video is billed at **standard prices** (the batch discount is for text "
                      "models). Batch result URLs live **one hour**: grok_nb downloads each video as soon as its "
                      "result appears."),
    new_code_cell("import grok_nb\nfrom grok_nb.simulator import embedded\n"
                  "from grok_nb.simulator.batch import batch_book\n\n"
                  "studio = grok_nb.Studio()\nserver, _ = embedded()\n"
                  "# The simulator finishes a batch within 5 simulated minutes (10 s at its 30x speed);\n"
                  "# xAI's, typically within 24 h.\n"
                  "batch_book(server.simulator).turnaround_s = 300"),
    new_markdown_cell("## 1. A comparison grid as one batch\nThe same grid, `batch=True`: it is priced and guarded "
                      "the same way, sent as one batch, and fills in as results arrive (in no fixed order)."),
    new_code_cell('grid = studio.compare(prompt=["A kite over dunes", "A tram in the rain", "A heron taking off"],\n'
                  '                      resolution=["480p", "720p"], duration=2, batch=True)'),
    new_code_cell("grid.wait()"),
    new_markdown_cell("## 2. A batch by hand, left to run overnight\n`client.batch(name=...)` takes `generate`, "
                      "`edit` and `extend` with the client's own arguments, checked at once; leaving the `with` "
                      "block creates the batch and adds the requests. Each request is a row in the history, with "
                      "its `batch_id`."),
    new_code_cell("tonight = grok_nb.Client(quiet=True)\n"
                  'with tonight.batch(name="overnight-sweep") as b:\n'
                  '    for prompt in ["A lighthouse in fog", "A fox in snow", "A comet over a lake",\n'
                  '                   "A boat at dawn"]:\n'
                  "        b.generate(prompt, duration=1)\n"
                  'print(b.batch_id, "·", len(b.runs), f"requests · estimated ${b.estimate_usd:.2f}")\n'
                  "tonight.close()  # the kernel goes away for the night; the batch goes on at the server"),
    new_markdown_cell("## 3. The next morning\nA new kernel (here: a new client on the same history) calls "
                      "`client.resume()`. It re-attaches every unfinished batch (and single job) of the history "
                      "without creating anything new, reads the results, and downloads the videos."),
    new_code_cell("morning = grok_nb.Client(quiet=True)\nhandles = morning.resume()\n"
                  "runs = [h.result() for h in handles]\n"
                  "df = studio.history()  # the one history every client here writes to, newest first\n"
                  'df[df["batch_id"].notna()][["batch_id", "prompt", "status", "cost_actual_usd", "local_path"]]'),
    new_markdown_cell("## 4. Uploads\n`client.upload(path)` sends an image or an MP4 (up to 50 MB) to the Files API "
                      "and returns its id; pass it as `{\"file_id\": ...}`. The history remembers each upload by "
                      "content hash, so the same bytes are not sent twice while their id lives. Local inputs over "
                      "10 MiB go this way on their own: that is how a local MP4 of any allowed size is edited or "
                      "extended."),
    new_code_cell("from grok_nb.demo import sample_image\n\n"
                  "file_id = morning.upload(sample_image(), expires_after=24 * 3600)\n"
                  'dusk = morning.generate("The beam sweeps over the sea", image={"file_id": file_id}, duration=2)\n'
                  "morning.upload(sample_image()) == file_id  # the same bytes: the same id, nothing re-sent"),
    new_code_cell("dusk"),
]

#: The rubric notebook 05's judge scores every take against (the simulator's judge measures darkness for "night").
NIGHT = "Does the scene look like night: dark, with lights?"

WHICH_PROMPT = [
    new_markdown_cell("# Which prompt wins?\n\nThree prompts, three takes of each. A vision judge scores every take "
                      "against a rubric; then a **blind arena** shows two takes at a time, their parameters hidden "
                      "and their sides shuffled, and you vote; a ranking says which prompt wins and **how sure** it "
                      "is. All of it runs on the simulator, free."),
    new_code_cell("import grok_nb\n\nstudio = grok_nb.Studio(budget_usd=5.00)"),
    new_markdown_cell("## 1. A grid with takes\nThe same prompt gives a different video each time: three takes of "
                      "each prompt show how much a prompt's results vary, so that one lucky take does not decide."),
    new_code_cell('prompts = [\n    "A quiet harbour at night, lanterns on the water",\n'
                  '    "A harbour at noon under a bright sun",\n    "A harbour at dawn in grey fog",\n]\n'
                  'with studio.experiment("which-prompt"):\n'
                  '    grid = studio.compare(prompt=prompts, takes=3, duration=2, resolution="480p")'),
    new_code_cell("grid.wait()"),
    new_markdown_cell("## 2. The judge's scores\n`studio.judge` sends a few frames of each take, with its prompt and "
                      "the rubric, to a Grok vision model (here the simulator's judge, which measures the frames) "
                      "and asks for a score from 0 to 1. An answer that does not fit the schema fails closed: no "
                      "score, and the reason says why. The scores show in the grid's footers and in the history; "
                      "what the judge cost is counted apart from the videos."),
    new_code_cell(f"NIGHT = {NIGHT!r}\nstudio.judge(grid, NIGHT)"),
    new_markdown_cell("## 3. A blind arena\nTwo takes side by side, playing together, muted and looping; what was "
                      "asked for each is hidden and the sides are shuffled. **Click the arena, then press ← if the "
                      "left take is better, → for the right one, ↓ for a tie** (or use the buttons; Backspace "
                      "takes the last vote back). Each vote goes "
                      "to the history's votes table; the least certain pairs come first, and no pair comes again "
                      "before the others have been seen. (The simulator writes each prompt into its frames, so here "
                      "you can read it; a real video carries no such label.)"),
    new_code_cell("arena = studio.arena(grid)"),
    new_markdown_cell("This notebook also runs unattended, where nobody can press a key, so the next cell casts a "
                      "short round in code: `arena.vote(\"left\")` is what ← does. A stand-in for a person "
                      "prefers the take whose prompt says night (`arena.pair` holds the two runs shown; the arena "
                      "itself never shows their prompts). **In a live notebook, vote with ← → ↓ in the arena above "
                      "instead.**"),
    new_code_cell("for _ in range(6):  # two rounds of the three pairs of prompts\n"
                  "    left, right = arena.pair\n"
                  '    night = "left" if "night" in left.prompt else "right" if "night" in right.prompt else "tie"\n'
                  "    arena.vote(night)"),
    new_markdown_cell("The judge can vote too: `arena.auto` asks it about the next pairs (the least certain "
                      "first). Each of its votes is recorded under a voter of its own, `judge:grok-4.3`, so people's "
                      "and the judge's rankings can be put side by side. Takes it judged above cost nothing again."),
    new_code_cell('arena.auto(judge="grok-4.3", rubric=NIGHT, pairs=9)'),
    new_markdown_cell("## 4. Which prompt wins, and how sure is it?\nA Bradley–Terry model turns the votes into a "
                      "strength per prompt (log-odds: a difference of 1 is about 73 % to win) with a 95 % interval "
                      "from bootstrap refits. An interval is **open** at an end that no vote bounds: nothing ever "
                      "beat that prompt, or it never beat anything."),
    new_code_cell('studio.ranking(grid, by="prompt")'),
    new_markdown_cell("Each voter's ranking, side by side: yours and the judge's."),
    new_code_cell('studio.plot_ranking(grid, by="prompt")'),
    new_markdown_cell("Every vote is a row of the history's votes table (the two runs, `a` shown on the left, the "
                      "winner, who voted, when); `arena.votes()` shows the arena's with the prompts they stand for, "
                      "`client.votes()` all of them."),
    new_code_cell("arena.votes()"),
]


NOTEBOOKS = {"01_quickstart.ipynb": QUICKSTART, "02_compare_prompts.ipynb": COMPARE,
             "03_how_the_api_works.ipynb": HOW, "04_batches_and_uploads.ipynb": BATCHES,
             "05_which_prompt_wins.ipynb": WHICH_PROMPT}
_MADE = re.compile(r"\b(grok_nb\.(?:Studio|Client)|embedded)\((\)?)")


def at_speed(source: str, speed: float) -> str:
    """A cell's code with every Studio, Client and embedded simulator it makes running at ``speed``."""
    def made(m: re.Match) -> str:
        arg = f"{speed!r}" if m.group(1) == "embedded" else f"simulator_speed={speed!r}"
        return f"{m.group(1)}({arg}{')' if m.group(2) else ', '}"
    return _MADE.sub(made, source)


def notebook(name: str, speed: float | None = None):
    """One notebook as an nbformat node; ``speed``: its simulators' time factor (default: grok_nb's)."""
    cells = [nbformat.from_dict(dict(c)) for c in NOTEBOOKS[name]]
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating a notebook changes only what changed
        if speed is not None and cell.cell_type == "code":
            cell.source = at_speed(cell.source, speed)
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nb


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    for name in NOTEBOOKS:
        nbformat.write(notebook(name), HERE / name)
    print("written:", sorted(p.name for p in HERE.glob("*.ipynb")), file=sys.stdout)
