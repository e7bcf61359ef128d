// The board behind an API token: the token is posted once for a session cookie (HttpOnly, SameSite=Strict),
// never put in the URL or in the page's storage.
document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const message = document.getElementById("message");
  const r = await fetch("/api/session", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: document.getElementById("token").value }),
  });
  if (r.ok) location.reload();
  else message.textContent = r.status === 401 ? "토큰이 맞지 않습니다 · Wrong token" : `${r.status}`;
});
