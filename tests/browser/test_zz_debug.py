from tests.browser.test_copilot_e2e import *  # noqa
from apps.copilot.streaming import stream_replay

def test_debug(site, new_page, copilot):
    CopilotPolicy.objects.create(auto_send_threshold=0.5, review_threshold=0.1)
    visitor = new_page()
    panel = widget_open(visitor, site.url)
    widget_send(visitor, PASSWORD_QUESTION)
    d = copilot()
    print("DECISION", d.decision, d.confidence)
    print("REPLAY", [e["type"] for e in stream_replay(ticket_id=d.ticket_id)])
    visitor.evaluate("console.log('HELLO')")
    for i in range(10):
        print("DOM", i, panel.locator('li').evaluate_all("els => els.map(e => e.className + ':' + (e.getAttribute('data-streamed-pieces')||''))"))
        visitor.wait_for_timeout(300)
    key = site.widget_key.public_key
    out = visitor.evaluate("""async (key) => {
      const st = JSON.parse(localStorage.getItem('deskpilot:'+key));
      try { const r = await fetch(location.origin + '/widget/api/'+key+'/stream', {headers:{Authorization:'Bearer '+st.token, Accept: 'text/event-stream'}, mode: 'cors', credentials: 'omit'});
      return r.status + ' ' + (await r.text()).slice(0, 200); } catch (e) { return 'ERR ' + e; }
    }""", key)
    print("STREAM", out[:1500])
    js = visitor.evaluate("""async () => { const s=[...document.scripts].map(x=>x.src).filter(Boolean); const r = await fetch(s.find(x=>x.includes('widget'))); return s.join(',') + ' ' + (await r.text()).includes('liveAppend'); }""")
    print("JS", js)
