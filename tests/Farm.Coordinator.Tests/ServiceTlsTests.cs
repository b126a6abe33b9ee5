using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Farm.Contracts;
using Farm.Coordinator.Dispatch;
using Farm.Coordinator.Hosting;
using Farm.Testing;

namespace Farm.Coordinator.Tests;

/// <summary>
/// The settings that secure the farm's own services: AMQPS URLs, the CA file that replaces the system's roots for
/// RabbitMQ and Redis (checked in real TLS handshakes on loopback: the chain and the host name), and who may report
/// job results.
/// </summary>
public sealed class ServiceTlsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("farm-service-tls-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void An_amqps_URL_turns_TLS_on_with_port_5671_by_default_and_the_password_is_never_shown()
    {
        var options = new RabbitMqOptions();
        options.ApplyUrl("amqps://farm-worker:s3cret-pw@mq.farm.example/builds");

        Assert.True(options.UseTls);
        Assert.Equal(("mq.farm.example", 5671, "builds", "farm-worker", "s3cret-pw"), (options.Host, options.Port, options.VirtualHost, options.User, options.Password));
        Assert.StartsWith("amqps://farm-worker:***@mq.farm.example:5671/", options.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret-pw", options.ToString(), StringComparison.Ordinal);

        options.ApplyUrl("amqp://guest:guest@127.0.0.1:5673/");
        Assert.False(options.UseTls);
        Assert.Equal(5673, options.Port);
        Assert.Throws<InvalidRabbitMqUrlException>(() => options.ApplyUrl("https://mq.farm.example/"));
    }

    [Fact]
    public async Task A_CA_file_is_the_only_root_trusted_and_the_host_name_is_still_checked()
    {
        var certificates = TestCertificates.Create(Path.Combine(_directory, "farm"));
        var other = TestCertificates.Create(Path.Combine(_directory, "other"));
        var farmCa = ServiceCertificates.TrustOnly(ServiceCertificates.LoadCa(certificates.CaPath, "test"));
        var otherCa = ServiceCertificates.TrustOnly(ServiceCertificates.LoadCa(other.CaPath, "test"));

        Assert.True(await HandshakeAsync(certificates, "127.0.0.1", farmCa));
        Assert.True(await HandshakeAsync(certificates, "localhost", farmCa));
        Assert.False(await HandshakeAsync(certificates, "redis.farm.example", farmCa));
        Assert.False(await HandshakeAsync(certificates, "127.0.0.1", otherCa));
    }

    [Fact]
    public void A_CA_file_that_cannot_be_read_is_FARM3030_naming_the_setting()
    {
        var missing = Path.Combine(_directory, "missing.crt");
        var notPem = Path.Combine(_directory, "empty.crt");
        File.WriteAllText(notPem, "not a certificate\n");

        var unreadable = Assert.Throws<ServiceCaUnreadableException>(() => FarmRedis.Configuration(new CoordinatorOptions { Redis = "127.0.0.1:6380,user=farm,password=pw", RedisCaPath = missing }));
        var empty = Assert.Throws<ServiceCaUnreadableException>(() => new RabbitMqOptions { UseTls = true, CaPath = notPem }.CertificateValidation());

        Assert.StartsWith("FARM3030: ", unreadable.Message, StringComparison.Ordinal);
        Assert.Contains("Farm:Coordinator:RedisCaPath", unreadable.Message, StringComparison.Ordinal);
        Assert.Contains("FARM_RABBITMQ_CA", empty.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_Redis_CA_file_turns_TLS_on_and_keeps_the_ACL_user()
    {
        var certificates = TestCertificates.Create(Path.Combine(_directory, "redis"));

        var configuration = FarmRedis.Configuration(new CoordinatorOptions { Redis = "redis.farm.example:6380,user=farm-coordinator,password=pw", RedisCaPath = certificates.CaPath });

        Assert.True(configuration.Ssl);
        Assert.Equal("farm-coordinator", configuration.User);
        Assert.DoesNotContain("pw", configuration.ToString(includePassword: false), StringComparison.Ordinal);
    }

    [Fact]
    public void Job_results_are_believed_only_from_the_farms_own_users_when_checked()
    {
        var only = JobResultSenders.Only(["farm-coordinator", "farm-worker"]);

        Assert.True(only.Accepts("farm-worker"));
        Assert.True(only.Accepts("farm-coordinator"));
        Assert.False(only.Accepts("acme-ci"));
        Assert.False(only.Accepts(null));
        Assert.True(JobResultSenders.Anyone.Accepts(null));
    }

    /// <summary>A TLS handshake on loopback with the server certificate of <paramref name="server"/>, the client asking for <paramref name="host"/>.</summary>
    private static async Task<bool> HandshakeAsync(TestCertificates server, string host, RemoteCertificateValidationCallback validation)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var certificate = X509Certificate2.CreateFromPemFile(server.CertificatePath, server.KeyPath);
        var accept = Task.Run(async () =>
        {
            using var accepted = await listener.AcceptTcpClientAsync();
            await using var tls = new SslStream(accepted.GetStream());
            try
            {
                await tls.AuthenticateAsServerAsync(certificate);
            }
            catch (Exception e) when (e is AuthenticationException or IOException)
            {
                // The client refused the certificate.
            }
        });
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        await using var stream = new SslStream(client.GetStream(), leaveInnerStreamOpen: false, validation);
        try
        {
            await stream.AuthenticateAsClientAsync(host);
            return true;
        }
        catch (AuthenticationException)
        {
            return false;
        }
        finally
        {
            stream.Close();
            await accept;
        }
    }
}
