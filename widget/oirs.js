// The /oirs form's "Usar mi ubicación": fills the hidden lat/long fields from the device's
// location, says what was captured, and lets the resident clear it. Without JavaScript or
// geolocation the button stays hidden and the form works as before.
(function () {
  "use strict";
  const use = document.getElementById("usar-ubicacion");
  const clear = document.getElementById("quitar-ubicacion");
  const lat = document.getElementById("lat");
  const long = document.getElementById("long");
  const status = document.getElementById("ubicacion-estado");
  if (!use || !clear || !lat || !long || !status || !navigator.geolocation) return;
  use.hidden = false;
  const fmt = (x) => x.toFixed(6);
  use.addEventListener("click", () => {
    status.textContent = "Buscando su ubicación…";
    navigator.geolocation.getCurrentPosition(
      (p) => {
        lat.value = fmt(p.coords.latitude);
        long.value = fmt(p.coords.longitude);
        const meters = Math.round(p.coords.accuracy || 0);
        status.textContent = `Ubicación indicada: ${lat.value}, ${long.value}` +
          (meters ? ` (precisión de unos ${meters.toLocaleString("es-CL")} m).` : ".");
        clear.hidden = false;
      },
      () => {
        status.textContent = "No pudimos obtener su ubicación (revise el permiso del navegador). Puede escribir la dirección.";
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
    );
  });
  clear.addEventListener("click", () => {
    lat.value = "";
    long.value = "";
    status.textContent = "Sin ubicación en el mapa.";
    clear.hidden = true;
    use.focus();
  });
})();
