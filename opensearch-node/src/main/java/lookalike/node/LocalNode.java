package lookalike.node;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.ServiceLoader;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Collectors;
import java.util.stream.StreamSupport;

import org.opensearch.common.settings.Settings;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.ExtensiblePlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * One real OpenSearch 2.19.1 node built from Maven Central's jars (no tarball, no Docker).
 *
 * <p>{@link Node}'s plugin-taking constructor is protected, so this subclasses it, as
 * OpenSearch's own test framework does. Plugins load from the classpath: transport and HTTP
 * (Netty4), Painless, the common analyzers and k-NN. Classpath plugins skip the extension step
 * that wires k-NN's Painless functions (cosineSimilarity and friends) into Painless, so
 * {@link #loadPainlessExtensions} does it itself with a {@link ServiceLoader}.
 *
 * <p>Settings come from system properties with the prefix {@code opensearch.setting.} (for
 * {@code -Dopensearch.setting.http.port=9200}); {@code path.home} is required.
 */
public final class LocalNode extends Node {

    static final String PREFIX = "opensearch.setting.";

    /**
     * Wires the Painless extensions on the classpath (k-NN's scoring functions) into Painless.
     * PainlessPlugin is final and keeps its allow-lists in a static map, so loading the
     * extensions once through any instance, before the node builds its script engine, is enough.
     */
    static void loadPainlessExtensions() {
        new PainlessPlugin().loadExtensions(new ExtensiblePlugin.ExtensionLoader() {
            @Override
            public <T> List<T> loadExtensions(Class<T> type) {
                ServiceLoader<T> loader = ServiceLoader.load(type, LocalNode.class.getClassLoader());
                return StreamSupport.stream(loader.spliterator(), false).collect(Collectors.toList());
            }
        });
    }

    /** The k-NN plugin comes from its plugin zip at run time (target/knn), not at compile time. */
    static List<Class<? extends Plugin>> plugins() throws ClassNotFoundException {
        Class<? extends Plugin> knn = Class.forName("org.opensearch.knn.plugin.KNNPlugin").asSubclass(Plugin.class);
        return List.of(Netty4Plugin.class, PainlessPlugin.class, CommonAnalysisPlugin.class, knn);
    }

    LocalNode(Settings settings) throws ClassNotFoundException {
        super(
            InternalSettingsPreparer.prepareEnvironment(
                settings,
                Collections.emptyMap(),
                Path.of(settings.get("path.home")).resolve("config"),
                () -> settings.get("node.name", "lookalike-local")
            ),
            plugins(),
            true
        );
    }

    static Settings settingsFromProperties() {
        Settings.Builder builder = Settings.builder()
            .put("cluster.name", "lookalike-local")
            .put("node.name", "lookalike-local")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", "9200")
            .put("transport.port", "9300-9400")
            // One node on a developer's disk: never refuse shards for want of disk space.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.auto_create_index", false);
        for (String name : System.getProperties().stringPropertyNames()) {
            if (name.startsWith(PREFIX)) {
                builder.put(name.substring(PREFIX.length()), System.getProperty(name));
            }
        }
        Settings settings = builder.build();
        if (settings.get("path.home") == null) {
            throw new IllegalArgumentException("set -D" + PREFIX + "path.home=DIR");
        }
        return settings;
    }

    public static void main(String[] args) throws Exception {
        Settings settings = settingsFromProperties();
        Files.createDirectories(Path.of(settings.get("path.home")).resolve("config"));
        loadPainlessExtensions();
        LocalNode node = new LocalNode(settings);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "lookalike-node-shutdown"));
        node.start();
        stopped.await();
    }
}
