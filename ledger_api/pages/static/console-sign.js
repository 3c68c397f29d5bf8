// The console's one script, on its sign page only (its CSP allows this file and nothing
// else): a self-custody charity signs each prepared record with its browser wallet
// (EIP-1193 `window.ethereum`, EIP-712 `eth_signTypedData_v4`), then the form is sent.
// Without a wallet the page works as it is: the offline command and the pasted signature.
"use strict";
(function () {
  const wallet = document.querySelector("[data-testid=wallet]");
  const button = document.getElementById("wallet-sign");
  const error = document.getElementById("wallet-error");
  const form = document.getElementById("sign-form");
  if (!wallet || !button || !form || !window.ethereum) {
    return;
  }
  wallet.hidden = false;
  button.addEventListener("click", async function () {
    button.disabled = true;
    error.hidden = true;
    try {
      const accounts = await window.ethereum.request({ method: "eth_requestAccounts" });
      const operator = button.dataset.operator.toLowerCase();
      const account = (accounts || []).find((a) => String(a).toLowerCase() === operator);
      if (!account) {
        throw new Error(button.dataset.wrongAccount);
      }
      for (const pre of document.querySelectorAll("[data-testid=typed-data]")) {
        const signature = await window.ethereum.request({
          method: "eth_signTypedData_v4",
          params: [account, pre.textContent],
        });
        document.getElementById("signature_" + pre.dataset.index).value = signature;
      }
      form.submit();
    } catch (failure) {
      error.textContent = String(failure && failure.message ? failure.message : failure);
      error.hidden = false;
      button.disabled = false;
    }
  });
})();
