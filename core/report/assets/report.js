// clustergrid report: sortable and filterable leaderboard, metric picker, and the
// explorer of one combination. User text is only ever set with textContent.
(function () {
  'use strict';
  var SVG = 'http://www.w3.org/2000/svg';
  var PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
    '#bcbd22', '#17becf', '#aec7e8', '#ffbb78', '#98df8a', '#ff9896', '#c5b0d5', '#c49c94',
    '#f7b6d2', '#dbdb8d', '#9edae5', '#393b79', '#637939'];
  var NOISE = '#bbbbbb';

  function el(tag, attrs, text) {
    var node = tag.indexOf('svg:') === 0 ? document.createElementNS(SVG, tag.slice(4))
      : document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function colour(value) {
    return value < 0 ? NOISE : PALETTE[value % PALETTE.length];
  }

  // Sorting: numbers numerically, text alphabetically; click again to reverse.
  document.querySelectorAll('table.sortable th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = th.closest('table').tBodies[0];
      var rows = Array.from(body.rows);
      var asc = th.dataset.order !== 'asc';
      th.closest('tr').querySelectorAll('th').forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = asc ? 'asc' : 'desc';
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c;
        if (isNaN(nx) && isNaN(ny)) { c = x.localeCompare(y); }
        else if (isNaN(nx)) { return 1; } // missing values last, either way
        else if (isNaN(ny)) { return -1; }
        else { c = nx - ny; }
        return asc ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });

  // Filters: a row shows when each component column matches its selected value.
  var filters = Array.from(document.querySelectorAll('select.filter'));
  filters.forEach(function (select) {
    select.addEventListener('change', function () {
      document.querySelectorAll('#leaderboard-table tbody tr').forEach(function (row) {
        row.hidden = !filters.every(function (f) {
          return !f.value || row.cells[+f.dataset.column].dataset.value === f.value;
        });
      });
    });
  });

  var picker = document.getElementById('metric');
  if (picker) {
    picker.addEventListener('change', function () {
      document.querySelectorAll('.by-metric').forEach(function (div) {
        div.hidden = div.dataset.metric !== picker.value;
      });
    });
  }

  var source = document.getElementById('explorer-data');
  if (!source) { return; }
  var data = JSON.parse(source.textContent);
  var runs = {};
  data.runs.forEach(function (run) { runs[run.id] = run; });
  var select = document.getElementById('combination');
  var tooltip = document.getElementById('tooltip');

  // One CSS rule per dataset holds its sprite, so thumbnails do not repeat the image.
  var sheet = el('style');
  Object.keys(data.datasets).forEach(function (key, i) {
    data.datasets[key].css = 'sprite-' + i;
    sheet.appendChild(document.createTextNode(
      '.sprite-' + i + '{background-image:url(' + data.datasets[key].sprite + ')}'));
  });
  document.head.appendChild(sheet);

  function thumb(dataset, position, scale) {
    var size = dataset.size * scale;
    var row = Math.floor(position / dataset.columns), col = position % dataset.columns;
    var node = el('span', {'class': 'thumb ' + dataset.css});
    node.style.width = size + 'px';
    node.style.height = size + 'px';
    node.style.backgroundSize = (dataset.columns * size) + 'px auto';
    node.style.backgroundPosition = (-col * size) + 'px ' + (-row * size) + 'px';
    return node;
  }
  function className(dataset, label) {
    return label < 0 ? 'unlabelled' : (dataset.classes[label] || String(label));
  }
  function clusterName(c) { return c < 0 ? 'noise' : 'cluster ' + c; }

  function drawMap(run) {
    var box = document.getElementById('map');
    var legend = document.getElementById('legend');
    box.textContent = '';
    legend.textContent = '';
    var dataset = data.datasets[run.data];
    var points = run.map && data.maps[run.map];
    if (!points) {
      box.appendChild(el('p', {'class': 'note'}, 'No map was drawn for this encoder output.'));
      return;
    }
    var byClass = document.querySelector('input[name=colour]:checked').value === 'class' &&
      dataset.truth;
    var values = byClass ? dataset.truth : run.clusters;
    var size = 480, pad = 10;
    var svg = el('svg:svg', {width: size, height: size, viewBox: '0 0 ' + size + ' ' + size});
    points.forEach(function (p, i) {
      svg.appendChild(el('svg:circle', {
        cx: (pad + p[0] * (size - 2 * pad)).toFixed(1),
        cy: (size - pad - p[1] * (size - 2 * pad)).toFixed(1),
        r: 3, fill: colour(values[i]), 'data-i': i}));
    });
    svg.addEventListener('mouseover', function (event) {
      var i = event.target.getAttribute('data-i');
      if (i === null) { return; }
      i = +i;
      tooltip.textContent = '';
      tooltip.appendChild(thumb(dataset, i, 2));
      tooltip.appendChild(el('div', {}, 'id ' + dataset.ids[i]));
      tooltip.appendChild(el('div', {}, clusterName(run.clusters[i]) +
        (dataset.truth ? ', class ' + className(dataset, dataset.truth[i]) : '')));
      tooltip.style.left = (event.clientX + 14) + 'px';
      tooltip.style.top = (event.clientY + 14) + 'px';
      tooltip.hidden = false;
    });
    svg.addEventListener('mouseout', function () { tooltip.hidden = true; });
    box.appendChild(svg);
    Array.from(new Set(values)).sort(function (a, b) { return a - b; }).forEach(function (v) {
      var item = el('span');
      var swatch = el('i');
      swatch.style.background = colour(v);
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(byClass ? className(dataset, v) : clusterName(v)));
      legend.appendChild(item);
    });
  }

  function drawGallery(run) {
    var box = document.getElementById('gallery');
    box.textContent = '';
    var dataset = data.datasets[run.data];
    var rows = {};
    run.gallery.forEach(function (entry) {
      (rows[entry[0]] = rows[entry[0]] || []).push(entry[1]);
    });
    Object.keys(rows).map(Number).sort(function (a, b) { return a - b; }).forEach(function (c) {
      var row = el('div', {'class': 'gallery-row'});
      row.appendChild(el('b', {}, clusterName(c)));
      rows[c].forEach(function (position) {
        var t = thumb(dataset, position, 2);
        t.title = 'id ' + dataset.ids[position];
        row.appendChild(t);
      });
      box.appendChild(row);
    });
  }

  function drawConfusion(run) {
    var box = document.getElementById('confusion');
    box.textContent = '';
    var m = run.confusion;
    if (!m) { box.appendChild(el('p', {'class': 'note'}, 'The dataset has no labels.')); return; }
    var table = el('table');
    var head = el('tr');
    head.appendChild(el('th', {'class': 'text'}, 'class \\ cluster'));
    m.clusters.forEach(function (c) { head.appendChild(el('th', {}, c)); });
    table.appendChild(head);
    var top = Math.max.apply(null, [1].concat.apply([], m.counts));
    m.counts.forEach(function (counts, r) {
      var tr = el('tr');
      tr.appendChild(el('th', {'class': 'text'}, m.classes[r]));
      counts.forEach(function (n) {
        var td = el('td', {}, String(n));
        var s = n / top;
        td.style.background = 'rgba(8,69,148,' + (0.85 * s).toFixed(3) + ')';
        td.style.color = s > 0.55 ? '#fff' : '#111';
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    box.appendChild(table);
  }

  function drawChart(chart) {
    var w = 460, h = 260, left = 50, right = 120, top = 24, bottom = 36;
    var xs = [], ys = [];
    chart.series.forEach(function (s) {
      s.x.forEach(function (x, i) {
        if (x !== null && s.y[i] !== null) { xs.push(x); ys.push(s.y[i]); }
      });
    });
    var svg = el('svg:svg', {width: w, height: h, 'class': 'chart'});
    svg.appendChild(el('svg:text', {x: left, y: 14, 'font-weight': 'bold'}, chart.title));
    if (!xs.length) { return svg; }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (chart.limits) { x0 = y0 = chart.limits[0]; x1 = y1 = chart.limits[1]; }
    if (x1 === x0) { x1 = x0 + 1; }
    if (y1 === y0) { y1 = y0 + 1; }
    function px(x) { return left + (x - x0) / (x1 - x0) * (w - left - right); }
    function py(y) { return h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom); }
    svg.appendChild(el('svg:rect', {x: left, y: top, width: w - left - right,
      height: h - top - bottom, fill: 'none', stroke: '#ccc'}));
    [[x0, y0], [x1, y1]].forEach(function (pair, k) {
      svg.appendChild(el('svg:text', {x: px(pair[0]), y: h - bottom + 14,
        'text-anchor': k ? 'end' : 'start'}, +pair[0].toPrecision(3)));
      svg.appendChild(el('svg:text', {x: left - 4, y: py(pair[1]) + (k ? 10 : 0),
        'text-anchor': 'end'}, +pair[1].toPrecision(3)));
    });
    svg.appendChild(el('svg:text', {x: (left + w - right) / 2, y: h - 6,
      'text-anchor': 'middle'}, chart.x));
    svg.appendChild(el('svg:text', {x: 12, y: (top + h - bottom) / 2,
      transform: 'rotate(-90 12 ' + (top + h - bottom) / 2 + ')', 'text-anchor': 'middle'},
      chart.y));
    chart.series.forEach(function (s, k) {
      var path = s.x.map(function (x, i) {
        return x === null || s.y[i] === null ? null : px(x).toFixed(1) + ',' + py(s.y[i]).toFixed(1);
      }).filter(function (p) { return p; }).join(' ');
      svg.appendChild(el('svg:polyline', {points: path, fill: 'none', stroke: colour(k),
        'stroke-width': 1.8}));
      svg.appendChild(el('svg:text', {x: w - right + 6, y: top + 12 + 14 * k,
        fill: colour(k)}, s.name));
    });
    return svg;
  }

  function drawCharts(run) {
    var box = document.getElementById('charts');
    box.textContent = '';
    run.charts.forEach(function (chart) { box.appendChild(drawChart(chart)); });
  }

  function show(id) {
    var run = runs[id];
    if (!run) { return; }
    select.value = id;
    drawMap(run);
    drawGallery(run);
    drawConfusion(run);
    drawCharts(run);
    document.querySelectorAll('#leaderboard-table tbody tr').forEach(function (row) {
      row.classList.toggle('selected', row.dataset.run === id);
    });
  }

  select.addEventListener('change', function () { show(select.value); });
  document.querySelectorAll('input[name=colour]').forEach(function (radio) {
    radio.addEventListener('change', function () { drawMap(runs[select.value]); });
  });
  document.querySelectorAll('#leaderboard-table tbody tr').forEach(function (row) {
    row.addEventListener('click', function () {
      if (runs[row.dataset.run]) {
        show(row.dataset.run);
        document.getElementById('explorer').scrollIntoView();
      }
    });
  });
  show(select.value);
})();
