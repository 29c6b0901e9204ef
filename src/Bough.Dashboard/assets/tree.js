// Tree page: the nodes are SVG groups acting as buttons. Blazor handles Enter and Space on them; this only stops
// Space from also scrolling the canvas, as it would not for a real <button>.
document.addEventListener("keydown", (e) => {
  if (e.key === " " && e.target instanceof Element && e.target.matches("svg.tree .node")) e.preventDefault();
});
