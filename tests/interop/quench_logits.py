"""Shared by the interop checks: a transformers model's logits against
`quench logits` of the same folder on a few prompts."""
import json
import subprocess

import torch

PROMPTS = ["Once upon a time", "Tom and his dog went to the park.", "The little bird"]


def logits_match(model, folder, quench, tol, prompts=PROMPTS):
    """Prints one line per prompt; True when every max |logit difference| is within tol."""
    ok = True
    for prompt in prompts:
        out = subprocess.run([quench, "logits", folder, "--text", prompt, "--json"], check=True,
                             capture_output=True, text=True).stdout
        ours = json.loads(out.strip().splitlines()[-1])
        with torch.no_grad():
            theirs = model(torch.tensor([ours["ids"]])).logits[0].double()
        diff = (theirs - torch.tensor(ours["logits"], dtype=torch.float64)).abs().max().item()
        good = diff <= tol
        ok = ok and good
        print(f"{prompt!r}: {len(ours['ids'])} tokens, max |logit diff| {diff:.3g} ({'ok' if good else 'FAIL'}, tol {tol})")
    return ok
