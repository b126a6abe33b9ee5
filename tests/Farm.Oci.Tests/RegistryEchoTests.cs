using System.Net;
using System.Text;
using Farm.Oci.Net;
using Farm.Oci.Registry;

namespace Farm.Oci.Tests;

/// <summary>
/// A server in front of a registry that echoes the request's headers in its error page (some proxies and debug
/// servers do): the error Farm reports, which goes to logs, events and traces, quotes the page without the credential.
/// </summary>
public sealed class RegistryEchoTests
{
    [Fact]
    public async Task A_refusal_that_echoes_the_authorization_header_is_reported_without_the_credential()
    {
        var port = FreePorts.Tcp();
        using var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        using var stop = new CancellationTokenSource();
        var serving = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                HttpListenerContext context;
                try
                {
                    context = await listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                context.Response.StatusCode = 401;
                context.Response.AddHeader("WWW-Authenticate", "Basic realm=\"echo\"");
                var page = Encoding.UTF8.GetBytes($"<html>denied; you sent Authorization: {context.Request.Headers["Authorization"] ?? "(none)"}</html>");
                await context.Response.OutputStream.WriteAsync(page);
                context.Response.Close();
            }
        });
        var registry = $"127.0.0.1:{port}";
        var credential = new RegistryCredential { Username = "ci", Password = "pw-" + Guid.NewGuid().ToString("N") };
        using var client = new RegistryClient(registry, new RegistryClientOptions { InsecureRegistries = [registry] }, StaticCredentialProvider.For(registry, credential));

        var error = await Assert.ThrowsAsync<RegistryAuthenticationException>(() => client.PullManifestAsync(ImageReference.Parse($"{registry}/app:1"), CancellationToken.None));

        stop.Cancel();
        listener.Stop();
        await serving;
        var basic = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credential.Username}:{credential.Password}"));
        Assert.Contains("you sent Authorization: Basic ***", error.Message, StringComparison.Ordinal);
        Assert.Contains("user 'ci'", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(basic, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(credential.Password, error.ToString(), StringComparison.Ordinal);
    }
}
