// Passkeys: adds one (data-passkey="register") or signs in with one
// (data-passkey="sign-in"). The element names the URL that gives the
// options and the one that takes the browser's answer; both answer JSON,
// with {"redirect": "..."} on success or {"error": {"message": "..."}}.
(function () {
  "use strict";

  function decode(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function encode(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // creationOptions and requestOptions turn the server's JSON into what
  // navigator.credentials takes (the browser's own parser when it has one).
  function creationOptions(pk) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(pk);
    }
    pk.challenge = decode(pk.challenge);
    pk.user.id = decode(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return pk;
  }

  function requestOptions(pk) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(pk);
    }
    pk.challenge = decode(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return pk;
  }

  // credentialJSON is the browser's answer as the server reads it.
  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") return cred.toJSON();
    var r = cred.response, out = {
      id: cred.id, rawId: encode(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: encode(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = encode(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = encode(r.authenticatorData);
      out.response.signature = encode(r.signature);
      if (r.userHandle) out.response.userHandle = encode(r.userHandle);
    }
    return out;
  }

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {})
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (j) {
        if (!res.ok) {
          var err = new Error((j.error && j.error.message) || ("The portal refused the request (" + res.status + ")."));
          err.redirect = j.redirect;
          throw err;
        }
        return j;
      });
    });
  }

  function message(err) {
    if (err && err.name === "NotAllowedError") return "The passkey request was cancelled or timed out. Try again.";
    if (err && err.name === "InvalidStateError") return "This passkey is registered already.";
    if (err && err.name === "SecurityError") return "The browser refused: passkeys work only at the portal's own address.";
    return (err && err.message) || "Something went wrong.";
  }

  function start(el) {
    var button = el.querySelector("[data-passkey-start]");
    var shown = el.querySelector("[data-passkey-error]");
    var csrf = el.getAttribute("data-csrf");
    var register = el.getAttribute("data-passkey") === "register";
    if (!window.PublicKeyCredential) {
      shown.textContent = "This browser does not support passkeys.";
      shown.hidden = false;
      button.disabled = true;
      return;
    }
    button.addEventListener("click", function () {
      button.disabled = true;
      shown.hidden = true;
      post(el.getAttribute("data-options-url"), csrf).then(function (opts) {
        return register
          ? navigator.credentials.create({ publicKey: creationOptions(opts.publicKey) })
          : navigator.credentials.get({ publicKey: requestOptions(opts.publicKey) });
      }).then(function (cred) {
        var body = { credential: credentialJSON(cred) };
        var name = el.querySelector("input[name=passkey_name]");
        if (name) body.name = name.value;
        return post(el.getAttribute("data-finish-url"), csrf, body);
      }).then(function (res) {
        window.location.assign(res.redirect || "/");
      }).catch(function (err) {
        if (err && err.redirect) {
          window.location.assign(err.redirect);
          return;
        }
        shown.textContent = message(err);
        shown.hidden = false;
        button.disabled = false;
      });
    });
  }

  document.querySelectorAll("[data-passkey]").forEach(start);
})();
