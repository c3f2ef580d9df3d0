// The wallet page's script, served as a file so the page's CSP needs no 'unsafe-inline'.
(() => {
  const base = location.pathname.replace(/\/$/, "");
  const status = document.getElementById("status");
  const show = (text, kind) => { status.textContent = text; status.className = kind || ""; };
  let message = null;

  async function post(path, body) {
    const r = await fetch(base + path, {method: "POST", headers: {"Content-Type": "application/json"},
                                        body: JSON.stringify(body)});
    const data = await r.json().catch(() => ({error: "the server answered something unreadable"}));
    if (!r.ok) throw new Error(data.error || ("the server answered " + r.status));
    return data;
  }

  async function getMessage(address) {
    const data = await post("/challenge", {address});
    message = data.message;
    const pre = document.getElementById("message");
    pre.textContent = message; pre.hidden = false;
    return message;
  }

  async function finish(signature) {
    show("Checking the signature…");
    const data = await post("/complete", {message, signature});
    show(data.text, "ok");
    document.getElementById("connect").disabled = true;
  }

  function toHex(text) {
    return "0x" + Array.from(new TextEncoder().encode(text), b => b.toString(16).padStart(2, "0")).join("");
  }

  document.getElementById("connect").addEventListener("click", async () => {
    try {
      if (!window.ethereum) { show("No browser wallet found: use the pasted signature below.", "error"); return; }
      show("Asking your wallet…");
      const [address] = await window.ethereum.request({method: "eth_requestAccounts"});
      await getMessage(address);
      show("Sign the message in your wallet…");
      const signature = await window.ethereum.request({method: "personal_sign", params: [toHex(message), address]});
      await finish(signature);
    } catch (e) { show("Not linked: " + (e.message || e), "error"); }
  });
  document.getElementById("get-message").addEventListener("click", async () => {
    try { await getMessage(document.getElementById("address").value.trim()); show("Sign this message exactly."); }
    catch (e) { show("Not linked: " + e.message, "error"); }
  });
  document.getElementById("send-signature").addEventListener("click", async () => {
    try {
      if (!message) throw new Error("show the message to sign first");
      await finish(document.getElementById("signature").value.trim());
    } catch (e) { show("Not linked: " + e.message, "error"); }
  });
})();
